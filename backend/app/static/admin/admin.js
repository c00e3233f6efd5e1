/*
 * The owner's dashboard: conversations, transcripts, leads, gaps and usage, read from the
 * admin API (/api/admin) with the ADMIN_TOKEN as a bearer header. No build step, no
 * dependencies. The token lives in sessionStorage (this tab only) and only ever travels
 * in the Authorization header. Everything a visitor wrote is put on the page as text
 * (textContent, Text nodes): no HTML from the server is ever parsed.
 */
(() => {
  "use strict";

  const TOKEN_KEY = "resume-chat:admin-token";
  const PAGE_SIZE = 25;
  const LEADS_PAGE = 50;
  const SOURCES = { model: "Model", resume_excerpt: "Resume excerpts", form: "Form" };
  const MODES = {
    model: "The model answers",
    resume_excerpt: "Resume excerpts (no model configured)",
    unavailable: "Nobody: no model and excerpts are off",
  };
  const VIEWS = ["sign-in", "conversations", "conversation", "leads", "gaps", "stats"];
  const numbers = new Intl.NumberFormat("en");
  const moments = new Intl.DateTimeFormat("en-GB", {
    dateStyle: "medium", timeStyle: "short", timeZone: "UTC",
  });
  const days = new Intl.DateTimeFormat("en-GB", {
    day: "numeric", month: "short", timeZone: "UTC",
  });

  const $ = (id) => document.getElementById(id);
  const state = {
    memoryToken: null, // used only if sessionStorage is unavailable
    leadsAvailable: null, // null until known; false when the server has no leads routes
    list: { cursors: [null], page: 0, next: null, rendered: false },
    leads: { next: null },
    conversationId: null,
    notice: "", // said once by the next conversation list, e.g. after a delete
  };

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // ---- The token and the API ----------------------------------------------------------

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || state.memoryToken;
    } catch {
      return state.memoryToken;
    }
  }

  function keepToken(value) {
    try {
      if (value === null) sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
      state.memoryToken = value;
    }
    if (value === null) state.memoryToken = null;
  }

  /** A response from the admin API, or an ApiError; a refused token signs out. */
  async function api(path, init = {}, bearer = token()) {
    let response;
    try {
      response = await fetch(path, {
        ...init,
        headers: { Authorization: `Bearer ${bearer}`, Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "network", "The server could not be reached. Try again.");
    }
    if (response.ok) return response;
    let code = "http_" + response.status;
    let message = `The server answered ${response.status}.`;
    try {
      const body = await response.json();
      code = body.error.code;
      message = body.error.message;
    } catch {
      // not the usual error body: keep the status line
    }
    const error = new ApiError(response.status, code, message);
    if (response.status === 401 && bearer === token()) {
      signOut("The server no longer accepts this token. Sign in again.");
    }
    throw error;
  }

  const getJson = async (path) => (await api(path)).json();

  /** Download an attachment with the token in the header (a link could not carry it). */
  async function download(path, fallbackName) {
    const response = await api(path);
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || fallbackName;
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: "" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    return name;
  }

  // ---- Small DOM helpers: text only ------------------------------------------------------

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node; // strings become Text nodes: never parsed as HTML
  }

  function when(iso) {
    return el("time", { datetime: iso }, `${moments.format(new Date(iso))} UTC`);
  }

  function say(id, text, kind = "") {
    const node = $(id);
    node.textContent = text;
    node.className = `status ${kind}`.trim();
  }

  function plural(count, word) {
    return `${numbers.format(count)} ${word}${count === 1 ? "" : "s"}`;
  }

  function failure(id, error) {
    if (error.status !== 401) say(id, error.message, "error");
  }

  // ---- Views and routes ----------------------------------------------------------------

  function show(view, focus = true) {
    for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
    const signedIn = view !== "sign-in";
    $("nav").hidden = !signedIn;
    $("sign-out").hidden = !signedIn;
    const section = view === "conversation" ? "conversations" : view;
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.view === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (focus) (view === "sign-in" ? $("token") : $(`h-${view}`)).focus();
  }

  function route() {
    if (!token()) {
      show("sign-in");
      return;
    }
    const [name, argument] = location.hash.slice(1).split("/");
    if (name === "conversation" && argument) openConversation(decodeURIComponent(argument));
    else if (name === "leads") openLeads();
    else if (name === "gaps") openGaps();
    else if (name === "stats") openStats();
    else openConversations();
  }

  // ---- Signing in and out ---------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const input = $("token");
    const value = input.value.trim();
    const message = $("sign-in-message");
    if (!value) {
      message.textContent = "Enter the admin token.";
      return;
    }
    const button = event.submitter || $("sign-in-form").querySelector("button");
    button.disabled = true;
    message.textContent = "";
    try {
      await api("/api/admin/conversations?limit=1", {}, value);
      keepToken(value);
      input.value = "";
      state.leadsAvailable = null;
      route();
    } catch (error) {
      message.textContent =
        error.status === 401
          ? "That token is not right. Use the server's ADMIN_TOKEN."
          : error.status === 404
            ? "The admin API is off on this server (ADMIN_TOKEN is unset)."
            : error.message;
      input.select();
    } finally {
      button.disabled = false;
    }
  }

  function signOut(reason = "") {
    keepToken(null);
    clearData();
    $("sign-in-message").textContent = reason;
    if (location.hash) history.replaceState(null, "", location.pathname);
    show("sign-in");
  }

  /** Nothing read with the token stays on the page after signing out. */
  function clearData() {
    for (const id of ["conversation-list", "turns", "answering", "totals", "charts",
      "top-questions"]) $(id).replaceChildren();
    for (const id of ["leads-table", "gaps-table", "days-table"]) {
      $(id).tBodies[0].replaceChildren();
    }
    $("leads-table").hidden = true;
    $("gaps-table").hidden = true;
    for (const id of ["conversations-status", "conversation-status", "leads-status",
      "gaps-status", "stats-status", "reload-result", "conversation-meta", "page-label"]) {
      $(id).textContent = "";
    }
    state.list = { cursors: [null], page: 0, next: null, rendered: state.list.rendered };
    state.conversationId = null;
  }

  // ---- Conversations ---------------------------------------------------------------------

  function listQuery() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const q = $("q").value.trim();
    if (q) params.set("q", q);
    if ($("since").value) params.set("since", $("since").value);
    if ($("until").value) params.set("until", $("until").value);
    if ($("has-lead").checked && state.leadsAvailable) params.set("has_lead", "true");
    const cursor = state.list.cursors[state.list.page];
    if (cursor) params.set("cursor", cursor);
    return params;
  }

  async function openConversations() {
    show("conversations");
    await Promise.all([loadConversations(), checkLeads()]);
  }

  async function loadConversations() {
    say("conversations-status", "Loading conversations…");
    let page;
    try {
      page = await getJson(`/api/admin/conversations?${listQuery()}`);
    } catch (error) {
      failure("conversations-status", error);
      return;
    }
    state.list.next = page.next_cursor;
    $("conversation-list").replaceChildren(...page.items.map(conversationCard));
    const filtered = listQuery().has("q") || $("since").value || $("until").value;
    const empty = filtered ? "No conversation matches these filters." : "No conversations yet.";
    say("conversations-status", [state.notice, page.items.length ? "" : empty].join(" ").trim());
    state.notice = "";
    $("newer").disabled = state.list.page === 0;
    $("older").disabled = !page.next_cursor;
    $("page-label").textContent = `Page ${state.list.page + 1}`;
    if (!state.list.rendered) {
      state.list.rendered = true;
      performance.mark("dashboard:conversations-rendered");
    }
  }

  function conversationCard(item) {
    const meta = el("p", { class: "meta" },
      when(item.updated_at), " · ", plural(item.question_count, "question"));
    for (const source of item.sources || []) {
      meta.append(" ", el("span", { class: `badge ${source}` }, SOURCES[source] || source));
    }
    if (item.lead_count > 0) {
      meta.append(" ", el("span", { class: "badge lead" }, plural(item.lead_count, "lead")));
    }
    const title = item.first_question === null ? "(no question yet)" : item.first_question;
    return el("li", { class: "card" },
      el("a", { href: `#conversation/${item.id}`, class: "card-title" }, title), meta);
  }

  function turnPage(step) {
    if (step > 0 && !state.list.next) return;
    if (step > 0) state.list.cursors[state.list.page + 1] = state.list.next;
    state.list.page = Math.max(0, state.list.page + step);
    loadConversations().then(() => {
      const focused = document.activeElement;
      if (!focused || focused === document.body || focused.disabled) $("h-conversations").focus();
    });
  }

  function applyFilters(event) {
    event.preventDefault();
    state.list.cursors = [null];
    state.list.page = 0;
    loadConversations();
  }

  function clearFilters() {
    $("filters").reset();
    applyFilters(new Event("submit"));
  }

  /** Whether this server has the leads routes; the lead filter is off until it does. */
  async function checkLeads() {
    if (state.leadsAvailable === null) {
      try {
        await api("/api/admin/leads?limit=1");
        state.leadsAvailable = true;
      } catch (error) {
        if (error.status === 404) state.leadsAvailable = false;
      }
    }
    const off = state.leadsAvailable === false;
    $("has-lead").disabled = off;
    $("has-lead-note").textContent = off ? "(not available on this server)" : "";
  }

  // ---- One conversation ------------------------------------------------------------------

  async function openConversation(id) {
    state.conversationId = id;
    show("conversation");
    $("turns").replaceChildren();
    $("conversation-meta").textContent = "";
    $("h-conversation").textContent = "Conversation";
    say("conversation-status", "Loading the transcript…");
    let transcript;
    try {
      transcript = await getJson(`/api/admin/conversations/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404 || error.status === 422) {
        say("conversation-status",
          "There is no conversation with that id; it may have been deleted.", "error");
      } else failure("conversation-status", error);
      return;
    }
    say("conversation-status", "");
    $("h-conversation").replaceChildren("Conversation of ", when(transcript.created_at));
    $("conversation-meta").replaceChildren(
      plural(transcript.question_count, "question"), " · ",
      plural(transcript.tokens_used, "token"), " · last active ", when(transcript.updated_at),
      " · ", el("code", {}, transcript.id));
    $("turns").replaceChildren(...transcript.messages.map(turn));
  }

  function turn(message) {
    const asked = message.role === "user";
    const item = el("li", { class: `turn ${asked ? "question" : "answer"}` },
      el("p", { class: "who" }, el("strong", {}, asked ? "Visitor" : "Assistant"), " ",
        when(message.created_at)),
      el("p", { class: "text" }, message.content || "(no text)"));
    if (!asked) item.append(answerFacts(message));
    return item;
  }

  function answerFacts(message) {
    const known = (value) => value !== null && value !== undefined;
    const tokens = known(message.prompt_tokens)
      ? `${numbers.format(message.prompt_tokens)} in, ` +
        `${numbers.format(message.completion_tokens ?? 0)} out`
      : "—";
    let latency = known(message.latency_ms) ? seconds(message.latency_ms) : "—";
    if (known(message.first_token_ms)) {
      latency += ` (first text after ${seconds(message.first_token_ms)})`;
    }
    const ending = message.error_code ? `error: ${message.error_code}` : message.finish_reason;
    const facts = [
      ["Model", message.model || "—"],
      ["Source", SOURCES[message.source] || message.source || "—"],
      ["Latency", latency],
      ["Tokens", tokens],
      ["Finish", ending || "—"],
    ];
    return el("dl", { class: "facts" },
      ...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  }

  function seconds(ms) {
    return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
  }

  async function exportConversation(format) {
    const id = state.conversationId;
    const suffix = format === "json" ? "json" : "md";
    say("conversation-status", "Preparing the download…");
    try {
      const name = await download(
        `/api/admin/conversations/${encodeURIComponent(id)}/export?format=${format}`,
        `conversation-${id}.${suffix}`);
      say("conversation-status", `Downloaded ${name}.`);
    } catch (error) {
      failure("conversation-status", error);
    }
  }

  async function deleteConversation() {
    $("confirm-delete").close();
    const id = state.conversationId;
    try {
      await api(`/api/admin/conversations/${encodeURIComponent(id)}`, { method: "DELETE" });
    } catch (error) {
      failure("conversation-status", error);
      return;
    }
    state.notice = "The conversation was deleted.";
    location.hash = "#conversations"; // the list reloads and says so
  }

  // ---- Leads and gaps (from the leads feature; absent on older servers) ------------------

  function unavailable(id, table, what) {
    $(table).hidden = true;
    const routes = what.toLowerCase();
    say(id, `${what} are not available on this server: it has no ${routes} routes yet.`);
  }

  async function openLeads() {
    show("leads");
    $("leads-table").tBodies[0].replaceChildren();
    state.leads.next = null;
    await loadLeads();
  }

  async function loadLeads() {
    say("leads-status", "Loading leads…");
    const params = new URLSearchParams({ limit: String(LEADS_PAGE) });
    if (state.leads.next) params.set("cursor", state.leads.next);
    let page;
    try {
      page = await getJson(`/api/admin/leads?${params}`);
    } catch (error) {
      if (error.status === 404) unavailable("leads-status", "leads-table", "Leads");
      else failure("leads-status", error);
      $("more-leads").hidden = true;
      $("export-leads").disabled = error.status === 404;
      return;
    }
    $("export-leads").disabled = false;
    const body = $("leads-table").tBodies[0];
    body.append(...page.items.map(leadRow));
    $("leads-table").hidden = body.rows.length === 0;
    say("leads-status", body.rows.length ? "" : "No leads yet.");
    state.leads.next = page.next_cursor;
    $("more-leads").hidden = !page.next_cursor;
  }

  function leadRow(lead) {
    const email = el("a", { href: `mailto:${lead.email}` }, lead.email);
    const link = el("a", { href: `#conversation/${lead.session_id}` }, "Open");
    link.setAttribute("aria-label", `Open the conversation of ${lead.email}`);
    return el("tr", {},
      el("td", {}, email), el("td", {}, lead.name || ""), el("td", {}, lead.company || ""),
      el("td", { class: "message" }, lead.message || ""),
      el("td", {}, SOURCES[lead.source] || lead.source), el("td", {}, when(lead.created_at)),
      el("td", {}, link));
  }

  async function exportLeads() {
    try {
      const name = await download("/api/admin/leads/export", "leads.csv");
      say("leads-status", `Downloaded ${name}.`);
    } catch (error) {
      if (error.status === 404) unavailable("leads-status", "leads-table", "Leads");
      else failure("leads-status", error);
    }
  }

  async function openGaps() {
    show("gaps");
    say("gaps-status", "Loading gaps…");
    const body = $("gaps-table").tBodies[0];
    body.replaceChildren();
    let page;
    try {
      page = await getJson(`/api/admin/gaps?order=${$("gaps-order").value}&limit=100`);
    } catch (error) {
      if (error.status === 404) unavailable("gaps-status", "gaps-table", "Gaps");
      else failure("gaps-status", error);
      return;
    }
    body.append(...page.items.map((gap) => el("tr", {},
      el("td", { class: "message" }, gap.question),
      el("td", { class: "num" }, numbers.format(gap.count)),
      el("td", {}, when(gap.last_asked_at)))));
    $("gaps-table").hidden = body.rows.length === 0;
    say("gaps-status", body.rows.length ? "" : "No unanswered questions yet.");
  }

  // ---- Stats -----------------------------------------------------------------------------

  async function openStats() {
    show("stats");
    say("stats-status", "Loading stats…");
    let stats;
    try {
      stats = await getJson(`/api/admin/stats?days=${$("stats-days").value}`);
    } catch (error) {
      failure("stats-status", error);
      return;
    }
    say("stats-status", `From ${stats.since} to ${stats.until} (UTC days).`);
    renderAnswering(stats);
    renderTotals(stats);
    renderCharts(stats.days);
    $("days-table").tBodies[0].replaceChildren(...stats.days.slice().reverse().map(dayRow));
    $("top-questions").replaceChildren(...stats.top_questions.map((top) => el("li", {},
      top.question, " ", el("span", { class: "count" }, `(${plural(top.count, "time")})`))));
    if (!stats.top_questions.length) $("top-questions").append(el("li", {}, "No questions yet."));
  }

  function renderAnswering(stats) {
    const answering = stats.answering || {};
    const rows = [
      ["Answering mode", MODES[answering.mode] || answering.mode || "unknown"],
      ["Model in use", answering.models && answering.models.length
        ? answering.models.join(", then ") : "none"],
      ["Prices (USD per million tokens)",
        `${stats.prompt_price_per_mtok} in, ${stats.cached_input_price_per_mtok} cached in, ` +
        `${stats.cache_write_price_per_mtok} cache write, ${stats.completion_price_per_mtok} out`],
    ];
    if (typeof stats.leads === "number") rows.push(["Leads", numbers.format(stats.leads)]);
    if (typeof stats.gaps === "number") {
      rows.push(["Unanswered questions", numbers.format(stats.gaps)]);
    }
    $("answering").replaceChildren(...rows.flatMap(([name, value]) =>
      [el("dt", {}, name), el("dd", {}, value)]));
  }

  const METRICS = [
    { name: "Questions", value: (d) => d.questions, format: (v) => numbers.format(v) },
    { name: "Conversations", value: (d) => d.conversations, format: (v) => numbers.format(v) },
    { name: "Tokens", value: (d) => d.prompt_tokens + d.completion_tokens,
      format: (v) => numbers.format(v) },
    { name: "Estimated cost", value: (d) => d.cost_usd, format: usd },
    { name: "Cached input tokens", value: (d) => d.cached_tokens,
      format: (v) => numbers.format(v) },
    { name: "Saved by prompt caching", value: (d) => d.cost_saved_usd, format: usd },
  ];

  /** Dollars: two significant digits under a cent, cents above; a saving can be negative. */
  function usd(value) {
    const size = Math.abs(value);
    const sign = value < 0 ? "-" : "";
    return size === 0 ? "$0" : size < 0.01 ? `${sign}$${size.toPrecision(2)}`
      : `${sign}$${size.toFixed(2)}`;
  }

  function renderTotals(stats) {
    $("totals").replaceChildren(...METRICS.map((metric) => el("div", { class: "total" },
      el("dt", {}, metric.name), el("dd", {}, metric.format(metric.value(stats.totals))))));
  }

  function renderCharts(perDay) {
    $("charts").replaceChildren(...METRICS.map((metric) => {
      const total = perDay.reduce((sum, day) => sum + metric.value(day), 0);
      return el("figure", { class: "chart" },
        el("figcaption", {}, `${metric.name} per day`),
        barChart(perDay, metric, total));
    }));
  }

  /** One metric's bars, one per day, scaled to the busiest day. */
  function barChart(perDay, metric, total) {
    const width = 320, height = 120, left = 4, top = 16, bottom = 18;
    const values = perDay.map(metric.value);
    const peak = Math.max(...values, 0);
    const step = (width - left * 2) / Math.max(values.length, 1);
    const plot = height - top - bottom;
    const busiest = values.indexOf(peak);
    const label = peak === 0 ? `${metric.name}: none in this range.`
      : `${metric.name} per day: ${metric.format(total)} in total, ` +
        `at most ${metric.format(peak)} on ${perDay[busiest].day}.`;
    const chart = svg("svg",
      { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
    const base = top + plot;
    chart.append(svg("line", { x1: left, x2: width - left, y1: base, y2: base, class: "axis" }));
    values.forEach((value, i) => {
      const h = peak === 0 ? 0 : Math.max((value / peak) * plot, value > 0 ? 1 : 0);
      const bar = svg("rect", {
        x: left + i * step + step * 0.1, y: top + plot - h, width: Math.max(step * 0.8, 0.5),
        height: h, class: "bar",
      });
      bar.append(svg("title", {}, `${perDay[i].day}: ${metric.format(value)}`));
      chart.append(bar);
    });
    chart.append(svg("text", { x: left, y: 11, class: "label" }, `max ${metric.format(peak)}`));
    if (perDay.length) {
      chart.append(
        svg("text", { x: left, y: height - 4, class: "label" }, shortDay(perDay[0].day)),
        svg("text", { x: width - left, y: height - 4, class: "label end" },
          shortDay(perDay[perDay.length - 1].day)));
    }
    return chart;
  }

  function svg(tag, attributes, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function shortDay(isoDay) {
    return days.format(new Date(`${isoDay}T00:00:00Z`));
  }

  function dayRow(day) {
    return el("tr", {}, el("td", {}, day.day),
      ...[day.conversations, day.questions, day.prompt_tokens + day.completion_tokens,
        day.cached_tokens].map((v) => el("td", { class: "num" }, numbers.format(v))),
      ...[day.cost_usd, day.cost_saved_usd].map((v) => el("td", { class: "num" }, usd(v))));
  }

  async function reloadResume() {
    const button = $("reload-resume");
    button.disabled = true;
    say("reload-result", "Reloading the resume…");
    try {
      const resume = await (await api("/api/admin/resume/reload", { method: "POST" })).json();
      say("reload-result",
        `Reloaded: the resume of ${resume.name} (${resume.format}, ` +
        `${plural(resume.characters, "character")}).`, "ok");
    } catch (error) {
      if (error.status !== 401) {
        const why = `Not reloaded; the resume in use is unchanged. ${error.message}`;
        say("reload-result", why, "error");
      }
    } finally {
      button.disabled = false;
    }
  }

  // ---- Wiring ----------------------------------------------------------------------------

  function start() {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut("You are signed out."));
    $("filters").addEventListener("submit", applyFilters);
    $("clear-filters").addEventListener("click", clearFilters);
    $("newer").addEventListener("click", () => turnPage(-1));
    $("older").addEventListener("click", () => turnPage(1));
    $("export-json").addEventListener("click", () => exportConversation("json"));
    $("export-markdown").addEventListener("click", () => exportConversation("markdown"));
    $("delete-conversation").addEventListener("click", () => $("confirm-delete").showModal());
    $("cancel-delete").addEventListener("click", () => $("confirm-delete").close());
    $("confirm-delete-button").addEventListener("click", deleteConversation);
    $("export-leads").addEventListener("click", exportLeads);
    $("more-leads").addEventListener("click", loadLeads);
    $("gaps-order").addEventListener("change", openGaps);
    $("stats-days").addEventListener("change", openStats);
    $("reload-resume").addEventListener("click", reloadResume);
    window.addEventListener("hashchange", route);
    route();
  }

  start();
})();
