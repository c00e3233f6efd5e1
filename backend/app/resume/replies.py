"""The wording of answers given from the resume itself: the quoted lines and the sentences
around them.

Quoted lines stay resume text; what is added is each group's section label and entry
heading for context and, when the resume is silent, one plain sentence saying so.
"""

import re
from collections.abc import Sequence

from app.resume.passages import Unit
from app.resume.topics import Topic

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CONTACT = re.compile(r"@|https?://|www\.|linkedin|github|\+\d[\d ()./-]{6,}\d", re.IGNORECASE)


class Wording:
    """Sentences about one resume's owner ("Maya Lindqvist's resume", "Maya")."""

    def __init__(self, owner: str, resume_text: str) -> None:
        self._owner = owner
        self.whose = f"{owner}'s resume" if owner else "the resume"
        self.first = owner.split()[0] if owner.strip() else ""
        email = _EMAIL.search(resume_text)
        self._email = email[0] if email else ""

    def quoted(self, units: Sequence[Unit], *, top: str) -> str:
        """The units grouped by section and entry, in the order given. No lead sentence: a
        reply says where it comes from in its `source` (the widget shows a badge)."""
        return "\n\n".join(_blocks(units, top))

    def absent(self, names: Sequence[str]) -> str:
        """Things the question names that the resume never mentions."""
        shown = " or ".join(names)
        return f"{_capital(self.whose)} doesn't mention {shown}."

    def not_covered(self, topic: Topic) -> str:
        """The resume says nothing about `topic`: say so, and whom to ask."""
        sentence = f"{_capital(self.whose)} doesn't say anything about {topic.absent}."
        if not topic.ask_directly:
            return sentence
        who = self.first or "the owner"
        where = f" ({self._email})" if self._email else ""
        return f"{sentence} It's best to ask {who} directly{where}."

    def unmatched(self, summary: Sequence[Unit], possessive: str | None, *, top: str) -> str:
        """Nothing matches: the owner's own summary, or else what can be asked."""
        opening = f"{_capital(self.whose)} doesn't mention that."
        if not summary:
            return f"{opening} Try asking about experience, skills, education or languages."
        if self.first and possessive:
            intro = f"Here is how {self.first} describes {possessive} work:"
        elif self.first:
            intro = f"Here is {self.first}'s own summary:"
        else:
            intro = "Here is its summary:"
        return "\n\n".join([f"{opening} {intro}", *_blocks(summary, top)])


def _title(section: str) -> str:
    """A section title as written, but not shouting: EDUCATION reads Education."""
    return section.capitalize() if section.isupper() else section


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _blocks(units: Sequence[Unit], top: str) -> list[str]:
    """Markdown blocks: a bold section label, the entry's heading, then its lines."""
    groups: dict[tuple[str, int], list[Unit]] = {}
    for unit in units:
        groups.setdefault((unit.section, unit.entry), []).append(unit)
    blocks: list[str] = []
    heads: list[Unit] = []  # entries shown by their heading alone, listed together
    for (section, entry), members in groups.items():
        if entry >= 0 and all(unit.kind == "head" for unit in members):
            if heads and heads[0].section != section:
                blocks.extend(_heads(heads))
                heads = []
            heads.extend(members)
            continue
        blocks.extend(_heads(heads))
        heads = []
        blocks.extend(_group(section, members, top))
    return blocks + _heads(heads)


def _label(section: str, unit: Unit, top: str) -> str:
    if section and section != top:
        return f"**{_title(section)}:** "
    return "**Contact:** " if _CONTACT.search(unit.text) else ""


def _group(section: str, members: list[Unit], top: str) -> list[str]:
    if section == top:  # the name, headline and contact lines: each a block of its own
        return [f"{_label(section, unit, top)}{unit.text}" for unit in members]
    label = _label(section, members[0], top)
    body = [unit for unit in members if unit.kind != "head"]
    if head := body[0].head:
        return [f"{label}{head}", _lines(body)]
    if len(body) == 1:
        return [f"{label}{body[0].text}"]
    if all(unit.kind == "sentence" for unit in body):
        return [f"{label}{_lines(body)}"]
    return [label.rstrip(), _lines(body)] if label else [_lines(body)]


def _lines(units: Sequence[Unit]) -> str:
    """Bullets and rows as a list; sentences as one paragraph."""
    if all(unit.kind == "sentence" for unit in units):
        return " ".join(unit.text for unit in units)
    return "\n".join(f"- {unit.text}" for unit in units)


def _heads(heads: list[Unit]) -> list[str]:
    """Entries of one section shown by their heading alone: one line, or a list."""
    if not heads:
        return []
    label = f"**{_title(heads[0].section)}:**"
    if len(heads) == 1:
        return [f"{label} {heads[0].text}"]
    return [label, "\n".join(f"- {unit.text}" for unit in heads)]
