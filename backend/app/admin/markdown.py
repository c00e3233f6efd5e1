"""Transcripts as Markdown for the owner, with the visitor's words kept as plain text.

Whatever a visitor typed (questions, the details of a contact) is escaped, so it cannot
forge an `**Assistant:**` turn, a heading, a list, a link, HTML, or an image that loads
from someone else's server when the owner opens the export. Answers are the owner's
model's and stay as written.
"""

import re
from datetime import datetime

from app.admin.schemas import Transcript

# Characters that open Markdown (or HTML) anywhere in a line; `\` first, so escapes stay literal.
_INLINE = re.compile(r"([\\`*_\[\]<>#!|~])")
# At the start of a line: list bullets, setext underlines, ordered-list numbers.
_BULLET = re.compile(r"^([ \t]*)([-+=])", re.MULTILINE)
_NUMBERED = re.compile(r"^([ \t]*\d{1,9})([.)])", re.MULTILINE)


def escape(text: str) -> str:
    """Visitor text that renders as itself: every Markdown mark backslash-escaped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INLINE.sub(r"\\\1", text)
    text = _BULLET.sub(r"\1\\\2", text)
    return _NUMBERED.sub(r"\1\\\2", text)


def markdown(transcript: Transcript, level: int) -> str:
    """A heading with the conversation's date, then the questions and answers in turn."""
    lines = [
        f"{'#' * level} Conversation of {when(transcript.created_at)}",
        "",
        f"`{transcript.id}` · {transcript.question_count} "
        f"{'question' if transcript.question_count == 1 else 'questions'} · "
        f"{transcript.tokens_used} tokens · last active {when(transcript.updated_at)}",
        "",
    ]
    for message in transcript.messages:
        if message.role == "user":
            lines += [f"**Visitor:** {escape(message.content)}", ""]
            continue
        ending = message.error_code or message.finish_reason or "empty"
        text = message.content or f"_(no answer: {ending})_"
        lines += [f"**Assistant:** {text}", ""]
    for lead in transcript.leads:
        details = escape(", ".join(filter(None, [lead.name, lead.email, lead.company])))
        said = f": {escape(lead.message)}" if lead.message else ""
        lines += [f"**Contact ({lead.source}, {when(lead.created_at)}):** {details}{said}", ""]
    return "\n".join(lines)


def when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"
