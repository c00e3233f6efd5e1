"""What the owner is told about a new lead (and, daily, about new unanswered questions).

The `text` is for chat apps (Slack, Discord): what a visitor typed is escaped so it cannot
mention `@channel`/`@everyone` or forge links there.
"""

from collections.abc import Sequence
from datetime import date

from app.leads.schemas import GapItem, LeadItem
from app.notify.message import Notification

_VIA = {"form": "the contact form", "model": "the chat"}
_SOURCES = {
    "form": "the contact form",
    "model": "the chat (the visitor gave them to the assistant)",
}


def conversation_link(base_url: str | None, lead: LeadItem) -> str:
    """The admin API's transcript of the lead's conversation; a path when no base URL is set."""
    return f"{base_url or ''}/api/admin/conversations/{lead.session_id}"


def lead_created(lead: LeadItem, base_url: str | None) -> Notification:
    link = conversation_link(base_url, lead)
    who = lead.name or lead.email
    at = f"{lead.company}" if lead.company else ""
    subject = f"New contact from your resume chat: {who}" + (f" ({at})" if at else "")
    text = f"New contact from the resume chat: {_chat_safe(who)}"
    if lead.name:
        text += f" <{_chat_safe(lead.email)}>"
    if lead.company:
        text += f", {_chat_safe(lead.company)}"
    if lead.message:
        text += f': "{_chat_safe(_shorten(lead.message, 300))}"'
    text += f" (via {_VIA[lead.source]}). Conversation: {link}"
    return Notification(
        event="lead.created",
        key=f"lead.created:{lead.id}",
        subject=subject,
        text=text,
        body=_email_body(lead, link),
        data={"lead": lead.model_dump(mode="json"), "conversation_url": link},
        lead_id=lead.id,
        reply_to=lead.email,
    )


def _email_body(lead: LeadItem, link: str) -> str:
    lines = [
        "Someone left their contact details on your resume chat.",
        "",
        f"Name:     {lead.name or '(not given)'}",
        f"E-mail:   {lead.email}",
        f"Company:  {lead.company or '(not given)'}",
        f"Source:   {_SOURCES[lead.source]}",
        f"When:     {lead.created_at:%Y-%m-%d %H:%M} UTC",
        "",
    ]
    if lead.message:
        lines += ["Message:", lead.message, ""]
    lines += [
        f"Conversation: {link}",
        "",
        "Reply to this e-mail to answer them directly.",
    ]
    return "\n".join(lines) + "\n"


def gaps_digest(day: date, gaps: Sequence[GapItem]) -> Notification:
    """The questions first asked on `day` that the resume could not answer."""
    count = len(gaps)
    subject = f"{count} new unanswered question{'s' if count != 1 else ''} on your resume chat"
    listed = [f"- {gap.question} (asked {gap.count}x)" for gap in gaps]
    text = f"{subject} ({day:%Y-%m-%d}):\n" + _chat_safe("\n".join(listed[:20]))
    body = (
        f"Visitors asked these on {day:%Y-%m-%d} and the resume could not answer them:\n\n"
        + "\n".join(listed)
        + "\n\nAll of them: GET /api/admin/gaps\n"
    )
    return Notification(
        event="gaps.digest",
        key=f"gaps.digest:{day.isoformat()}",
        subject=subject,
        text=text,
        body=body,
        data={"day": day.isoformat(), "gaps": [gap.model_dump(mode="json") for gap in gaps]},
    )


def _chat_safe(text: str) -> str:
    """Slack's three escapes, and mentions of everyone broken with a zero-width space."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for mention in ("@everyone", "@here", "@channel"):
        text = text.replace(mention, "@\u200b" + mention[1:])
    return text


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
