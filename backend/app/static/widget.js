/*
 * Resume chat widget. One tag on any page adds a chat button and panel:
 *
 *   <script src="https://chat.example.com/widget.js" data-server="https://chat.example.com"
 *     data-title="Ask about my resume" data-accent="#0b6bcb" data-position="right" defer></script>
 *
 * data-server defaults to where this script came from; data-mode="page" fills the whole
 * page instead (the server's own page at / does that). Everything lives in a shadow root,
 * so the host page's CSS cannot reach it. Answers stream over the server's WebSocket (/ws)
 * and are rendered from a small Markdown subset by creating DOM nodes and setting their
 * text: no HTML from an answer is ever parsed. No build step, no dependencies.
 */
(() => {
  "use strict";

  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script || window.__resumeChatWidget) return;
  window.__resumeChatWidget = true;

  const config = readConfig(script);
  const keys = {
    session: `resume-chat:session:${config.server}`,
    open: `resume-chat:open:${config.server}`,
  };
  // Codes for which the question was refused before it was stored: it goes back to the input.
  const REFUSED = new Set([
    "rate_limited", "budget_exceeded", "session_limit_reached",
    "busy", "invalid_message", "message_too_long",
  ]);
  const SENTENCES = {
    busy: "Please wait for the current answer to finish, or stop it first.",
    invalid_message: "That message couldn't be sent. Please try rephrasing it.",
    message_too_long: "That message is too long. Please shorten it and try again.",
    session_not_found: "Your earlier conversation has expired, so a new one was started.",
    budget_exceeded: "The assistant has reached its usage limit for now. Please try again later.",
    session_limit_reached: "This conversation has reached its length limit. Start a new one.",
    llm_unavailable: "The assistant is unavailable right now. Please try again in a moment.",
    llm_timeout: "The assistant took too long to answer. Please try again.",
    storage_unavailable: "The chat service is having trouble right now. Please try again soon.",
    internal_error: "Something went wrong on our side. Please try again.",
  };
  const ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    send: "M4 12l16-8-6 16-2.5-6.5L4 12z",
    stop: "M7 7h10v10H7z",
    restart: "M4 12a8 8 0 1 0 2.3-5.6M4 4v4h4",
  };

  const state = {
    ws: null, ready: false, sid: load("localStorage", keys.session), attempt: 0,
    turn: null, resume: null, pending: null, refused: false, started: false, profile: null,
    retryTimer: 0, countdownTimer: 0, cooldownUntil: 0,
  };
  const ui = {};

  // ---- Configuration and colours -------------------------------------------------------

  function readConfig(el) {
    const data = el.dataset;
    const base = el.src ? new URL(".", el.src).href : location.href;
    const accent = data.accent && CSS.supports("color", data.accent) ? data.accent : "#0b6bcb";
    return {
      server: (data.server || base).replace(/\/+$/, ""),
      title: data.title || "",
      accent,
      position: data.position === "left" ? "left" : "right",
      page: data.mode === "page",
    };
  }

  function toRgb(color) {
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.fillStyle = color;
    const value = ctx.fillStyle; // "#rrggbb", or "rgba(r, g, b, a)" for translucent colours
    if (value.startsWith("#")) return [1, 3, 5].map((i) => parseInt(value.slice(i, i + 2), 16));
    return value.match(/[\d.]+/g).slice(0, 3).map(Number);
  }

  function luminance(rgb) {
    const [r, g, b] = rgb.map((c) => {
      const s = c / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  const contrast = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);

  /** The accent, the text colour on it, and a shade of it readable on white (WCAG AA). */
  function palette(accent) {
    const rgb = toRgb(accent);
    const onAccent = contrast(luminance(rgb), 1) >= contrast(luminance(rgb), 0) ? "#fff" : "#000";
    let ink = rgb;
    for (let f = 0.95; contrast(luminance(ink), 1) < 4.6 && f > 0; f -= 0.05) {
      ink = rgb.map((c) => Math.round(c * f));
    }
    return { accent, onAccent, ink: `rgb(${ink.join(",")})` };
  }

  // ---- Building the interface ---------------------------------------------------------------

  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "text") el.textContent = value;
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (value !== false && value != null) el.setAttribute(name, value === true ? "" : value);
    }
    el.append(...children);
    return el;
  }

  function icon(name) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  function mount() {
    const host = h("resume-chat");
    const root = host.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    root.adoptedStyleSheets = [sheet];
    const colours = palette(config.accent);
    const wrap = h("div", { class: `rc ${config.page ? "page" : "floating"} ${config.position}` });
    wrap.style.setProperty("--accent", colours.accent);
    wrap.style.setProperty("--on-accent", colours.onAccent);
    wrap.style.setProperty("--ink", colours.ink);
    wrap.append(...build());
    root.append(wrap);
    document.body.append(host);
    ui.wrap = wrap;
    wrap.addEventListener("keydown", onKeydown);
    addEventListener("online", onOnline);
    addEventListener("offline", onOffline);
    if (config.page) start({ focus: !matchMedia("(pointer: coarse)").matches });
    else if (load("sessionStorage", keys.open)) open({ focus: false });
  }

  function build() {
    const title = config.title || "Chat";
    ui.title = h("h2", { class: "title", id: "rc-title", text: title });
    ui.subtitle = h("p", { class: "subtitle" });
    ui.avatar = h("span", { class: "avatar", "aria-hidden": "true" }, icon("chat"));
    ui.restart = h("button", {
      type: "button", class: "icon-button", "aria-label": "Start a new conversation",
      title: "New conversation", onclick: restart,
    }, icon("restart"));
    ui.close = h("button", {
      type: "button", class: "icon-button", "aria-label": "Close chat", onclick: () => close(),
    }, icon("close"));
    const header = h("header", {}, ui.avatar, h("div", { class: "heading" }, ui.title, ui.subtitle),
      ui.restart, config.page ? "" : ui.close);
    ui.note = h("p", { class: "note", hidden: true });
    ui.greeting = h("div", { class: "body" });
    ui.greetingBubble = h("div", { class: "msg bot", hidden: true }, ui.greeting);
    ui.chips = h("div", { class: "chips", role: "group", "aria-label": "Suggested questions" });
    ui.messages = h("div", { class: "messages" });
    ui.log = h("div", { class: "log", role: "region", tabindex: "0", "aria-label": "Conversation" },
      ui.greetingBubble, ui.chips, ui.messages);
    ui.noticeText = h("p");
    ui.noticeAction = h("button", { type: "button", hidden: true });
    ui.notice = h("div", { class: "notice", hidden: true }, ui.noticeText, ui.noticeAction);
    ui.input = h("textarea", {
      id: "rc-input", rows: "1", placeholder: "Ask a question…",
      "aria-label": "Your question", autocomplete: "off",
      oninput: fitInput, onkeydown: onInputKeydown,
    });
    ui.send = h("button", { type: "submit", class: "send", "aria-label": "Send" }, icon("send"));
    ui.stop = h("button", {
      type: "button", class: "stop", "aria-label": "Stop the answer", hidden: true, onclick: stop,
    }, icon("stop"));
    const form = h("form", { class: "composer", onsubmit: onSubmit }, ui.input, ui.send, ui.stop);
    ui.announcer = h("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "true" });
    const [contactForm, contactBar] = buildContact();
    ui.panel = h("section", config.page
      ? { class: "panel", "aria-labelledby": "rc-title" }
      : { class: "panel", role: "dialog", "aria-labelledby": "rc-title", hidden: true },
    header, ui.note, ui.log, ui.notice, contactForm, form, contactBar, ui.announcer);
    if (config.page) return [ui.panel];
    ui.launcher = h("button", {
      type: "button", class: "launcher", "aria-label": launcherLabel(), "aria-expanded": "false",
      onclick: () => (ui.panel.hidden ? open() : close()),
    }, icon("chat"));
    return [ui.panel, ui.launcher];
  }

  // ---- Leave your contact: a small form posted to /api/sessions/{id}/contact ------------------

  function buildContact() {
    const field = (name, label, attrs = {}) => {
      const input = h(name === "message" ? "textarea" : "input", {
        id: `rc-contact-${name}`, name, rows: name === "message" ? "2" : null, ...attrs,
      });
      return [h("label", { for: input.id, text: label }), input];
    };
    ui.contactError = h("p", { class: "contact-error", id: "rc-contact-error", role: "alert" });
    ui.contactFields = h("div", { class: "contact-fields" },
      ...field("email", "E-mail (required)", { type: "email", required: true,
        autocomplete: "email", "aria-describedby": "rc-contact-error" }),
      ...field("name", "Name", { autocomplete: "name", maxlength: "200" }),
      ...field("company", "Company", { autocomplete: "organization", maxlength: "200" }),
      ...field("message", "Message", { maxlength: "2000" }),
      // A honeypot: hidden from people (and screen readers); bots fill it in.
      h("input", { name: "website", class: "trap", tabindex: "-1", autocomplete: "off",
        "aria-hidden": "true" }));
    ui.contactSend = h("button", { type: "submit", class: "contact-send", text: "Send" });
    ui.contactCancel = h("button", {
      type: "button", text: "Cancel", onclick: () => toggleContact(false),
    });
    ui.contactForm = h("form", {
      class: "contact", hidden: true, "aria-labelledby": "rc-contact-title", novalidate: true,
      oninput: (event) => event.target.removeAttribute("aria-invalid"),
      onsubmit: onContactSubmit, onkeydown: (event) => {
        if (event.key !== "Escape") return;
        event.stopPropagation(); // closes this form, not the chat
        toggleContact(false);
      },
    }, h("h3", { id: "rc-contact-title", text: "Leave your contact" }),
    h("p", { class: "contact-intro", text: "The owner of this resume will get back to you." }),
    ui.contactFields, ui.contactError,
    h("div", { class: "contact-actions" }, ui.contactSend, ui.contactCancel));
    ui.contactToggle = h("button", {
      type: "button", class: "contact-toggle", text: "Leave your contact",
      "aria-expanded": "false", "aria-controls": "rc-contact", onclick: () => toggleContact(),
    });
    ui.contactForm.id = "rc-contact";
    return [ui.contactForm, h("div", { class: "contact-bar" }, ui.contactToggle)];
  }

  function toggleContact(show = ui.contactForm.hidden) {
    ui.contactForm.hidden = !show;
    ui.contactToggle.setAttribute("aria-expanded", String(show));
    if (show) {
      ui.contactFields.hidden = false;
      ui.contactSend.hidden = false;
      ui.contactCancel.textContent = "Cancel";
      ui.contactError.textContent = "";
      ui.contactForm.querySelector("#rc-contact-email").focus();
    } else {
      ui.contactToggle.focus();
    }
  }

  async function onContactSubmit(event) {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(ui.contactForm));
    const email = ui.contactForm.elements.email;
    if (!data.email.trim()) return contactProblem("Please enter your e-mail address.", email);
    if (!state.sid) return contactProblem("The chat is still connecting. Please try again.");
    ui.contactSend.disabled = true;
    let response = null;
    try {
      response = await fetch(`${config.server}/api/sessions/${state.sid}/contact`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data),
      });
    } catch {
      // unreachable: said below
    }
    ui.contactSend.disabled = false;
    if (response && response.status === 201) return contactSent();
    const body = response ? await response.json().catch(() => ({})) : {};
    const message = (body.error && body.error.message) || "";
    if (message.startsWith("email:")) {
      return contactProblem("That e-mail address doesn't look right. Please check it.", email);
    }
    contactProblem(message || "Your details couldn't be sent. Please try again in a moment.");
  }

  function contactProblem(text, input = null) {
    ui.contactError.textContent = text;
    for (const el of ui.contactForm.elements) el.removeAttribute("aria-invalid");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  function contactSent() {
    ui.contactForm.reset();
    ui.contactFields.hidden = true;
    ui.contactSend.hidden = true;
    ui.contactError.textContent = "Thank you! Your details were sent.";
    ui.contactCancel.textContent = "Done";
    ui.contactCancel.focus();
  }

  // ---- Opening and closing ------------------------------------------------------------------

  function start({ focus }) {
    if (!state.started) {
      state.started = true;
      loadProfile();
      connect();
    }
    if (focus) ui.input.focus();
  }

  function open({ focus = true } = {}) {
    ui.panel.hidden = false;
    ui.wrap.classList.add("open");
    ui.launcher.setAttribute("aria-expanded", "true");
    ui.launcher.setAttribute("aria-label", "Close chat");
    ui.launcher.replaceChildren(icon("close"));
    store("sessionStorage", keys.open, "1");
    start({ focus });
    scrollToEnd();
  }

  function close() {
    if (config.page) return;
    ui.panel.hidden = true;
    ui.wrap.classList.remove("open");
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.setAttribute("aria-label", launcherLabel());
    ui.launcher.replaceChildren(icon("chat"));
    store("sessionStorage", keys.open, null);
    ui.launcher.focus();
  }

  function launcherLabel() {
    return config.title ? `Open chat: ${config.title}` : "Open chat";
  }

  function onKeydown(event) {
    if (event.key === "Escape" && !event.isComposing && !config.page && !ui.panel.hidden) {
      event.stopPropagation();
      close();
    }
  }

  // ---- Profile: title, greeting, suggested questions ----------------------------------------

  async function loadProfile() {
    let profile = null;
    try {
      const response = await fetch(`${config.server}/api/profile`, { cache: "no-store" });
      if (response.ok) profile = await response.json();
    } catch {
      // Unreachable or refused: the connection reports why; show a plain greeting meanwhile.
    }
    state.profile = profile || {};
    const { name, headline, greeting, mode } = state.profile;
    if (!config.title && name) ui.title.textContent = name;
    if (config.page && name) document.title = `Chat with ${name}`;
    ui.subtitle.textContent = headline || "";
    if (name) ui.avatar.replaceChildren(initials(name));
    ui.greetingBubble.hidden = false;
    renderMarkdown(ui.greeting, greeting || "Hi! Ask me anything about this resume.");
    ui.note.hidden = mode !== "resume_excerpt" && mode !== "unavailable";
    ui.note.textContent = mode === "resume_excerpt"
      ? "The AI assistant is offline, so answers are quoted straight from the resume."
      : "The assistant is unavailable right now.";
    const chip = (text) =>
      h("button", { type: "button", class: "chip", text, onclick: () => submit(text) });
    ui.chips.replaceChildren(...(state.profile.suggested_questions || []).map(chip));
    updateChips();
  }

  function initials(name) {
    return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
  }

  function updateChips() {
    ui.chips.hidden = ui.messages.childElementCount > 0 || !ui.chips.childElementCount;
  }

  // ---- Connection ---------------------------------------------------------------------------

  function connect() {
    if (state.ws || state.refused) return;
    clearTimeout(state.retryTimer);
    const params = new URLSearchParams();
    if (state.sid) params.set("session_id", state.sid);
    // Cut off mid-answer: the server sends the chunks after the last one seen, then the rest.
    if (state.sid && state.resume) params.set("last_seq", String(state.resume.seq));
    const query = params.size ? `?${params}` : "";
    const ws = new WebSocket(`${config.server.replace(/^http/, "ws")}/ws${query}`);
    state.ws = ws;
    state.ready = false;
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = (event) => onClose(ws, event);
  }

  function disconnect() {
    if (!state.ws) return;
    state.ws.onclose = state.ws.onmessage = null;
    state.ws.close(1000);
    state.ws = null;
    state.ready = false;
  }

  function onFrame(frame) {
    const data = frame.data;
    if (frame.type === "session") onSession(data);
    else if (frame.type === "chunk" && state.turn) onChunk(String(data), frame.seq);
    else if (frame.type === "done" && state.turn) onDone(data || {});
    else if (frame.type === "error") onError(data || {});
  }

  function onSession(data) {
    state.ready = true;
    state.attempt = 0;
    state.sid = data.session_id;
    store("localStorage", keys.session, state.sid);
    if (ui.notice.dataset.kind === "connection") hideNotice();
    renderHistory(data.history || []);
    const resume = state.resume;
    state.resume = null;
    if (data.answering) follow(resume);
    const pending = state.pending;
    state.pending = null;
    if (pending) ask(pending);
  }

  async function onClose(ws, event) {
    if (ws !== state.ws) return;
    const wasReady = state.ready;
    state.ws = null;
    state.ready = false;
    if (state.turn) {
      state.resume = { text: state.turn.text, seq: state.turn.seq };
      endTurn("The connection dropped before the answer finished.");
    }
    // The server closes idle chats (1000); reconnect quietly when the visitor writes again.
    if (wasReady && event.code === 1000) return;
    if (!wasReady && (await refusedHere())) {
      if (state.ws) return; // the visitor tried again meanwhile
      state.refused = true;
      returnPending();
      const owner = `Site owner: add ${location.origin} to ALLOWED_ORIGINS on the chat server.`;
      showNotice(`This chat isn't available on this website. ${owner}`, "error");
      ui.input.disabled = ui.send.disabled = true; // nothing asked here could be answered
      ui.chips.hidden = true;
      console.warn(`[resume-chat] ${config.server} refused ${location.origin} (ALLOWED_ORIGINS)`);
      return;
    }
    // 1013: the server could not open the conversation (its storage is down); try again later.
    scheduleReconnect(event.code === 1013 ? "The chat service is having trouble right now." : "");
  }

  /** After a failed handshake: is the server up but refusing this page's origin? */
  async function refusedHere() {
    if (!navigator.onLine || new URL(config.server).origin === location.origin) return false;
    const url = `${config.server}/api/profile`;
    const works = (mode) => fetch(url, { mode, cache: "no-store" }).then(() => true, () => false);
    return (await works("no-cors")) && !(await works("cors")); // up, but CORS refuses us
  }

  function scheduleReconnect(problem) {
    const delay = Math.min(10000, 500 * 2 ** state.attempt) * (0.8 + Math.random() * 0.4);
    state.attempt += 1;
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(connect, delay);
    const sentence = !navigator.onLine ? offlineSentence()
      : `${problem || "Can't reach the chat right now."} Reconnecting…`;
    showNotice(sentence, "warn", { label: "Retry now", run: connect }, "connection");
  }

  function onOnline() {
    if (!state.started) return;
    if (!state.ws) connect();
    else if (state.ready && ui.notice.dataset.kind === "connection") hideNotice();
  }

  function onOffline() {
    if (state.started) showNotice(offlineSentence(), "warn", null, "connection");
  }

  function offlineSentence() {
    return "You're offline. The chat will reconnect when you're back online.";
  }

  function restart() {
    if (state.turn) stop();
    disconnect();
    state.sid = null;
    state.turn = null;
    state.pending = null;
    store("localStorage", keys.session, null);
    setStreaming(false);
    hideNotice();
    ui.messages.replaceChildren();
    updateChips();
    connect();
    ui.input.focus();
  }

  // ---- Asking and answering -----------------------------------------------------------------

  function onSubmit(event) {
    event.preventDefault();
    submit(ui.input.value);
  }

  function onInputKeydown(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit(ui.input.value);
    }
  }

  function submit(raw) {
    const text = raw.trim();
    if (!text || state.turn || state.pending || Date.now() < state.cooldownUntil) return;
    ui.input.value = "";
    fitInput();
    if (ui.notice.dataset.kind !== "connection") hideNotice();
    if (state.ready) return ask(text);
    state.pending = text; // sent once the session frame arrives
    addMessage("user", text);
    state.refused = false;
    connect();
  }

  function ask(text) {
    const user = addMessage("user", text);
    const bot = addMessage("bot", "");
    const body = bot.querySelector(".body");
    const dots = [h("span"), h("span"), h("span")];
    body.append(h("span", { class: "typing", "aria-hidden": "true" }, ...dots));
    bot.setAttribute("aria-busy", "true");
    state.turn = { question: text, text: "", seq: 0, user, bot, body, stopping: false };
    setStreaming(true);
    state.ws.send(JSON.stringify({ type: "message", data: text }));
  }

  /** An answer still being written when the session opened: show it as it carries on. */
  function follow(resume) {
    const users = ui.messages.querySelectorAll(".msg.user");
    const user = users[users.length - 1] || null;
    const text = resume ? resume.text : "";
    const bot = addMessage("bot", text);
    bot.setAttribute("aria-busy", "true");
    const body = bot.querySelector(".body");
    const question = user ? user.querySelector(".body").textContent : "";
    const seq = resume ? resume.seq : 0;
    state.turn = { question, text, seq, user, bot, body, stopping: false };
    setStreaming(true);
  }

  function stop() {
    if (!state.turn || state.turn.stopping || !state.ready) return;
    state.turn.stopping = true;
    state.ws.send(JSON.stringify({ type: "cancel" }));
  }

  function onChunk(text, seq) {
    const turn = state.turn;
    if (typeof seq === "number") {
      if (seq <= turn.seq) return; // seen before the connection dropped
      turn.seq = seq;
    }
    turn.text += text;
    const follow = nearEnd();
    renderMarkdown(turn.body, turn.text);
    if (follow) scrollToEnd();
  }

  function onDone(data) {
    const turn = state.turn;
    if (typeof data.content === "string") turn.text = data.content;
    renderMarkdown(turn.body, turn.text);
    if (data.source === "resume_excerpt") markExcerpt(turn.bot);
    if (data.finish_reason === "cancelled") {
      addMeta(turn.bot, turn.text ? "Stopped." : "Stopped before any answer was written.");
    }
    if (data.finish_reason === "length") addMeta(turn.bot, "The answer was cut short.");
    turn.bot.removeAttribute("aria-busy");
    state.turn = null;
    setStreaming(false);
    announce(turn.body.textContent || "The answer was stopped.");
    scrollToEnd();
  }

  function onError(data) {
    const code = data.code || "internal_error";
    const turn = state.turn;
    if (turn && REFUSED.has(code)) {
      if (turn.user) turn.user.remove();
      turn.bot.remove();
      if (!ui.input.value) ui.input.value = turn.question;
      fitInput();
      state.turn = null;
      setStreaming(false);
      updateChips();
    } else if (turn) {
      endTurn("This answer is incomplete.");
    }
    if (code === "rate_limited") return cooldown(Number(data.retry_after) || 10);
    const action = code === "session_limit_reached"
      ? { label: "Start a new conversation", run: restart } : null;
    showNotice(SENTENCES[code] || data.message || SENTENCES.internal_error, "error", action);
  }

  /** Ends the current answer early: keeps what was written, or removes an empty bubble. */
  function endTurn(note) {
    const turn = state.turn;
    state.turn = null;
    setStreaming(false);
    if (!turn.text) turn.bot.remove();
    else if (note) addMeta(turn.bot, note);
    turn.bot.removeAttribute("aria-busy");
  }

  function setStreaming(on) {
    const stopHadFocus = ui.wrap.getRootNode().activeElement === ui.stop;
    ui.send.hidden = on;
    ui.stop.hidden = !on;
    if (stopHadFocus && !on) ui.input.focus(); // the stop button is gone: keep focus nearby
  }

  function cooldown(seconds) {
    state.cooldownUntil = Date.now() + seconds * 1000;
    ui.send.disabled = true;
    const sentence = (left) => "You've reached the question limit for now. " +
      `You can ask again in ${left} second${left === 1 ? "" : "s"}.`;
    showNotice(sentence(Math.ceil(seconds)), "error", null, "cooldown");
    clearInterval(state.countdownTimer);
    state.countdownTimer = setInterval(() => {
      const left = Math.ceil((state.cooldownUntil - Date.now()) / 1000);
      const shown = ui.notice.dataset.kind === "cooldown";
      if (left > 0) return void (shown && (ui.noticeText.textContent = sentence(left)));
      clearInterval(state.countdownTimer);
      ui.send.disabled = false;
      if (shown) hideNotice();
      announce("You can ask again now.");
    }, 250);
  }

  function returnPending() {
    if (!state.pending) return;
    if (!ui.input.value) ui.input.value = state.pending;
    state.pending = null;
    ui.messages.lastElementChild?.remove();
    updateChips();
  }

  // ---- Messages, notices, announcements -----------------------------------------------------

  function renderHistory(history) {
    ui.messages.replaceChildren();
    for (const item of history) {
      const bubble = addMessage(item.role === "user" ? "user" : "bot", item.content);
      if (item.source === "resume_excerpt") markExcerpt(bubble);
    }
  }

  /** An answer quoted from the resume: its badge, and the one offline note at the top. */
  function markExcerpt(bubble) {
    bubble.prepend(h("span", { class: "badge", text: "From the resume" }));
    if (!ui.note.hidden) return;
    ui.note.textContent =
      "The AI assistant is offline, so answers are quoted straight from the resume.";
    ui.note.hidden = false;
  }

  function addMessage(role, text) {
    const who = role === "user" ? "You said: " : "Assistant: ";
    const label = h("span", { class: "sr-only", text: who });
    const body = h("div", { class: "body" });
    if (role === "user") body.textContent = text;
    else renderMarkdown(body, text);
    const bubble = h("div", { class: `msg ${role}` }, label, body);
    ui.messages.append(bubble);
    updateChips();
    scrollToEnd();
    return bubble;
  }

  function addMeta(bubble, text) {
    bubble.append(h("p", { class: "meta", text }));
  }

  function showNotice(text, kind, action = null, tag = "") {
    if (ui.notice.hidden || ui.noticeText.textContent !== text) announce(text);
    ui.notice.hidden = false;
    ui.notice.className = `notice ${kind}`;
    ui.notice.dataset.kind = tag;
    ui.noticeText.textContent = text;
    ui.noticeAction.hidden = !action;
    if (action) {
      ui.noticeAction.textContent = action.label;
      ui.noticeAction.onclick = () => action.run();
    }
  }

  function hideNotice() {
    if (ui.notice.dataset.kind === "cooldown" && Date.now() < state.cooldownUntil) return;
    ui.notice.hidden = true;
    ui.notice.dataset.kind = "";
  }

  function announce(text) {
    ui.announcer.textContent = "";
    setTimeout(() => (ui.announcer.textContent = text), 50);
  }

  function nearEnd() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 80;
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function fitInput() {
    ui.input.style.height = "auto";
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 140)}px`;
  }

  // ---- Safe Markdown: paragraphs, lists, headings, code, bold, italic, links ----------------

  const INLINE = new RegExp([
    /`([^`\n]+)`/.source, // 1: code
    /\[([^\]\n]+)\]\(([^()\s]+)\)/.source, // 2, 3: [text](url)
    /(https?:\/\/[^\s<>()"']*[^\s<>()"'.,;:!?])/.source, // 4: a bare URL
    /\*\*(?!\s)(.+?)(?<!\s)\*\*/.source, // 5: bold
    /(?<![\w*])\*(?![\s*])(.+?)(?<![\s*])\*(?![\w*])/.source, // 6: italic
  ].join("|"), "g");

  function renderMarkdown(target, source) {
    target.replaceChildren();
    let para = null;
    let list = null;
    let item = null;
    let code = null;
    let blank = false;
    let hardBreak = false;
    for (const line of source.replace(/\r\n?/g, "\n").split("\n")) {
      if (code) {
        if (/^\s*```/.test(line)) code = null;
        else code.append(code.childNodes.length ? `\n${line}` : line);
        continue;
      }
      const bullet = /^\s*(?:[-*+•]|(\d{1,9})[.)])\s+(.*)$/.exec(line);
      const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*$/.exec(line);
      if (/^\s*```/.test(line)) {
        code = target.appendChild(h("pre")).appendChild(h("code"));
        para = list = item = null;
      } else if (bullet) {
        const tag = bullet[1] ? "ol" : "ul";
        if (!list || list.localName !== tag) {
          list = target.appendChild(h(tag));
          if (bullet[1] && bullet[1] !== "1") list.start = Number(bullet[1]);
        }
        item = list.appendChild(h("li"));
        appendInline(item, bullet[2]);
        para = null;
      } else if (heading) {
        const strong = target.appendChild(h("p")).appendChild(h("strong"));
        appendInline(strong, heading[1]);
        para = list = item = null;
      } else if (!line.trim()) {
        para = null; // a list survives blank lines; an indented line continues its item
        blank = true;
        continue;
      } else if (item && (!blank || /^\s{2,}/.test(line))) {
        item.append(" ");
        appendInline(item, line.trim());
      } else {
        list = item = null;
        // A line break inside a paragraph is a space, as in Markdown; two trailing spaces
        // or a backslash make it a hard break.
        if (para) para.append(hardBreak ? h("br") : " ");
        else para = target.appendChild(h("p"));
        appendInline(para, line.trim().replace(/\\$/, ""));
      }
      hardBreak = / {2,}$|\\$/.test(line);
      blank = false;
    }
  }

  function appendInline(parent, text, inLink = false) {
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      parent.append(text.slice(last, m.index));
      last = m.index + m[0].length;
      if (m[1] !== undefined) parent.append(h("code", { text: m[1] }));
      else if (inLink && (m[2] ?? m[4]) !== undefined) parent.append(m[0]); // no nested links
      else if (m[2] !== undefined) appendLink(parent, m[2], m[3]);
      else if (m[4] !== undefined) appendLink(parent, m[4], m[4]);
      else if (m[5] !== undefined) appendInline(parent.appendChild(h("strong")), m[5], inLink);
      else appendInline(parent.appendChild(h("em")), m[6], inLink);
    }
    parent.append(text.slice(last));
  }

  /** Only absolute http, https and mailto links become links; anything else stays text. */
  function appendLink(parent, text, href) {
    let url = null;
    try {
      url = new URL(href);
    } catch {
      // not an absolute URL
    }
    if (!url || !["http:", "https:", "mailto:"].includes(url.protocol)) {
      parent.append(text === href ? text : `${text} (${href})`);
      return;
    }
    const link = h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" });
    appendInline(link, text, true);
    parent.append(link);
  }

  // ---- Storage (may be unavailable: private modes, sandboxed frames) ------------------------

  function load(storage, key) {
    try {
      return window[storage].getItem(key);
    } catch {
      return null;
    }
  }

  function store(storage, key, value) {
    try {
      if (value == null) window[storage].removeItem(key);
      else window[storage].setItem(key, value);
    } catch {
      // the chat still works; it just won't survive a reload
    }
  }

  // ---- Styles (scoped to the shadow root) ---------------------------------------------------

  const STYLE = `
    :host { all: initial; }
    .rc {
      --text: #1c2230; --muted: #4f5868; --line: #dfe3e9; --soft: #f5f7fa;
      font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
      color: var(--text); -webkit-font-smoothing: antialiased; text-align: left;
      /* Inherited properties the host page may have set on <resume-chat>: reset them. */
      letter-spacing: normal; word-spacing: normal; text-transform: none; text-indent: 0;
      text-shadow: none; font-style: normal; white-space: normal; direction: ltr;
      visibility: visible; cursor: auto;
    }
    .rc *, .rc *::before, .rc *::after { box-sizing: border-box; }
    [hidden] { display: none !important; }
    .sr-only {
      position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
      clip: rect(0 0 0 0); white-space: nowrap; border: 0;
    }
    button { font: inherit; cursor: pointer; }
    button:disabled { cursor: default; opacity: .55; }
    svg { width: 22px; height: 22px; fill: none; stroke: currentColor; stroke-width: 2;
      stroke-linecap: round; stroke-linejoin: round; }
    :focus-visible { outline: 3px solid var(--ink); outline-offset: 2px; }

    .launcher {
      position: fixed; bottom: 20px; right: 20px; z-index: 2147483000;
      width: 60px; height: 60px; border: 0; border-radius: 50%; display: grid; place-items: center;
      background: var(--accent); color: var(--on-accent);
      box-shadow: 0 8px 24px rgba(16, 24, 40, .28); transition: transform .15s ease;
    }
    .launcher:hover { transform: scale(1.06); }
    .launcher svg { width: 26px; height: 26px; }
    .left .launcher { left: 20px; right: auto; }

    .panel {
      display: flex; flex-direction: column; overflow: hidden; background: #fff;
    }
    .floating .panel {
      position: fixed; bottom: 96px; right: 20px; z-index: 2147483001;
      width: 380px; height: min(640px, calc(100vh - 120px));
      border-radius: 18px;
      box-shadow: 0 18px 50px rgba(16, 24, 40, .24), 0 0 0 1px rgba(16, 24, 40, .06);
    }
    .left .panel { left: 20px; right: auto; }
    .page { min-height: 100vh; min-height: 100dvh; display: flex; justify-content: center;
      padding: 32px 16px; background: #eceff3; }
    .page .panel {
      width: 100%; max-width: 760px; height: calc(100vh - 64px); height: calc(100dvh - 64px);
      border-radius: 18px;
      box-shadow: 0 10px 40px rgba(16, 24, 40, .12), 0 0 0 1px rgba(16, 24, 40, .05);
    }

    header {
      display: flex; align-items: center; gap: 12px; padding: 14px 14px 14px 18px;
      background: var(--accent); color: var(--on-accent);
    }
    .avatar {
      flex: none; width: 40px; height: 40px; border-radius: 50%; display: grid; place-items: center;
      font-weight: 700; font-size: 15px; letter-spacing: .02em;
      background: color-mix(in srgb, var(--on-accent) 18%, transparent);
    }
    .avatar svg { width: 20px; height: 20px; }
    .heading { flex: 1; min-width: 0; }
    .title { margin: 0; font-size: 16px; font-weight: 650; line-height: 1.3; }
    .subtitle {
      margin: 0; font-size: 13px; line-height: 1.35;
      overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
    }
    .subtitle:empty { display: none; }
    .icon-button {
      flex: none; width: 38px; height: 38px; border: 0; border-radius: 10px; display: grid;
      place-items: center; background: transparent; color: inherit;
    }
    .icon-button:hover { background: color-mix(in srgb, var(--on-accent) 16%, transparent); }
    .icon-button svg { width: 20px; height: 20px; }
    header :focus-visible { outline-color: var(--on-accent); outline-offset: -3px; }

    .note { margin: 0; padding: 8px 18px; font-size: 13px; color: #5a4300; background: #fff6db;
      border-bottom: 1px solid #f1e3b5; }

    .log {
      flex: 1; overflow-y: auto; padding: 18px 16px; background: var(--soft);
      display: flex; flex-direction: column; gap: 12px; overscroll-behavior: contain;
    }
    .log:focus-visible { outline-offset: -3px; }
    .messages { display: flex; flex-direction: column; gap: 12px; }
    .msg {
      max-width: 86%; padding: 10px 14px; border-radius: 18px; overflow-wrap: anywhere;
    }
    .msg.user {
      align-self: flex-end; background: var(--accent); color: var(--on-accent);
      border-bottom-right-radius: 6px; white-space: pre-wrap;
    }
    .msg.bot {
      align-self: flex-start; background: #fff; border: 1px solid var(--line);
      border-bottom-left-radius: 6px;
    }
    .body p { margin: 0 0 .6em; }
    .body > :last-child { margin-bottom: 0; }
    .body ul, .body ol { margin: .2em 0 .6em; padding-left: 1.3em; }
    .body li { margin: .15em 0; }
    .body code { font: .88em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
      background: #eef1f5; padding: .1em .35em; border-radius: 5px; }
    .body pre { margin: 0 0 .6em; padding: 10px 12px; background: #eef1f5; border-radius: 10px;
      overflow-x: auto; white-space: pre; }
    .body pre code { padding: 0; background: none; }
    .body a { color: var(--ink); text-decoration: underline; text-underline-offset: 2px; }
    .badge {
      display: inline-block; margin-bottom: 6px; padding: 1px 9px; border-radius: 999px;
      font-size: 12px; font-weight: 600; color: #5a4300; background: #fff1c7;
    }
    .meta { margin: 6px 0 0; font-size: 12.5px; font-style: italic; color: var(--muted); }
    .typing { display: inline-flex; gap: 4px; padding: 6px 0; }
    .typing span { width: 7px; height: 7px; border-radius: 50%; background: #8a93a3;
      animation: rc-blink 1.2s infinite ease-in-out both; }
    .typing span:nth-child(2) { animation-delay: .15s; }
    .typing span:nth-child(3) { animation-delay: .3s; }
    @keyframes rc-blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
    @media (prefers-reduced-motion: reduce) {
      .typing span { animation: none; opacity: .6; }
      .launcher { transition: none; }
    }

    .chips { display: flex; flex-wrap: wrap; gap: 8px; }
    .chip {
      padding: 7px 13px; border: 1px solid var(--ink); border-radius: 999px; background: #fff;
      color: var(--ink); font-size: 14px; line-height: 1.3; text-align: left;
    }
    .chip:hover { background: var(--accent); border-color: var(--accent); color: var(--on-accent); }

    .notice {
      display: flex; align-items: center; gap: 10px; padding: 10px 16px; font-size: 14px;
      border-top: 1px solid;
    }
    .notice p { flex: 1; margin: 0; }
    .notice.error { color: #8b1a1a; background: #fdeeee; border-color: #f3cccc; }
    .notice.warn { color: #5a4300; background: #fff6db; border-color: #f1e3b5; }
    .notice button {
      flex: none; padding: 5px 12px; border: 1px solid currentColor; border-radius: 8px;
      background: #fff; color: inherit; font-size: 13px;
    }

    .composer {
      display: flex; align-items: flex-end; gap: 8px; padding: 12px; background: #fff;
      border-top: 1px solid var(--line);
    }
    textarea {
      flex: 1; min-height: 44px; max-height: 140px; resize: none; margin: 0; padding: 11px 14px;
      border: 1px solid #b9c0cb; border-radius: 14px; background: #fff; color: var(--text);
      font-family: inherit; font-size: 16px; line-height: 1.35;
    }
    textarea::placeholder { color: #6b7382; }
    textarea:focus { outline: none; border-color: var(--ink); box-shadow: 0 0 0 2px var(--ink); }
    .send, .stop {
      flex: none; width: 44px; height: 44px; border: 0; border-radius: 50%; display: grid;
      place-items: center;
    }
    .send { background: var(--accent); color: var(--on-accent); }
    .send svg { width: 20px; height: 20px; margin-left: -2px; }
    .stop { background: var(--text); color: #fff; }
    .stop svg { fill: currentColor; width: 16px; height: 16px; }

    .contact-bar { padding: 0 12px 8px; background: #fff; text-align: center; }
    .contact-toggle { border: 0; background: none; color: var(--ink); font-size: 13px;
      text-decoration: underline; text-underline-offset: 2px; padding: 4px 6px; }
    .contact { padding: 12px 16px; background: #fff; border-top: 1px solid var(--line);
      max-height: 60%; overflow-y: auto; }
    .contact h3 { margin: 0; font-size: 15px; }
    .contact-intro { margin: 2px 0 8px; font-size: 13px; color: var(--muted); }
    .contact-fields { display: grid; grid-template-columns: auto 1fr; gap: 6px 10px;
      align-items: center; font-size: 14px; }
    .contact-fields input, .contact-fields textarea { font: inherit; font-size: 16px;
      padding: 6px 10px; border: 1px solid #b9c0cb; border-radius: 10px; min-width: 0;
      min-height: 0; max-height: none; resize: vertical; color: var(--text); background: #fff; }
    .contact-fields [aria-invalid="true"] { border-color: #b42318; }
    .contact .trap { position: absolute; left: -10000px; width: 1px; height: 1px; }
    .contact-error { margin: 8px 0 0; font-size: 13.5px; }
    .contact-error:empty { display: none; }
    .contact-actions { display: flex; gap: 8px; margin-top: 10px; }
    .contact-actions button { padding: 6px 14px; border-radius: 10px; border: 1px solid var(--ink);
      background: #fff; color: var(--ink); }
    .contact-actions .contact-send { background: var(--accent); color: var(--on-accent);
      border-color: var(--accent); }

    @media (max-width: 480px) {
      .floating .panel { inset: 0; width: auto; height: auto; border-radius: 0; }
      .floating.open .launcher { display: none; }
      .page { padding: 0; }
      .page .panel { height: 100vh; height: 100dvh; border-radius: 0; box-shadow: none; }
      .msg { max-width: 92%; }
    }
  `;

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
