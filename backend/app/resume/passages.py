"""The resume cut into the smallest pieces that answer a question: bullets, sentences, rows.

Each `Unit` keeps its section and, under an entry (a job, a degree), that entry's heading
lines, so a quoted bullet still says where it comes from. Markdown (also what JSON Resume
and Word files become) is read by its blank lines, headings and list markers; text from a
PDF or a .txt file has none of those, so its soft-wrapped lines are joined first and an
entry is a line followed by bullets.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

type Kind = Literal["head", "bullet", "sentence", "row", "line"]

MAX_HEAD_CHARS = 200
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)[\s#]*$")
_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u25aa\u2023\u25e6\u00b7]|\d{1,2}[.)])\s+")
_ROW = re.compile(r"\S\s+\|\s+\S|^\s*\|.*\|\s*$")
_RULE_ROW = re.compile(r"^\s*\|?\s*:?-{3,}")
_DATED = re.compile(r"\b(19|20)\d\d\b|\bpresent\b|\bcurrent\b", re.IGNORECASE)
# A sentence ends at . ! or ? before a capital or digit, unless the dot ends an abbreviation.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\u201c])")
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|approx|incl|dr|mr|mrs|ms|prof|st|no|jr|sr|inc|ltd|co|dept)"
    r"|\b[A-Za-z]|\w\.\w+)\.$",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"[^\s@]+@|https?://|www\.")
_JOINING_ENDS = (",", ";", ":", "&", "|", "\u00b7", "\u2013", "-", "/", "(")
_JOINING_WORDS = frozenset({"and", "or", "of", "the", "to", "in", "for", "with", "a", "an", "at"})
# Bare section titles that start a section in text without Markdown headings (PDF, plain text).
BARE_TITLES = frozenset(
    {"summary", "profile", "about", "about me", "experience", "work experience", "employment"}
    | {"professional experience", "work history", "career", "education", "skills"}
    | {"technical skills", "projects", "languages", "certifications", "certificates"}
    | {"licenses", "interests", "availability", "contact", "publications", "awards"}
    | {"volunteering", "references", "courses", "training"}
)


@dataclass(frozen=True, slots=True)
class Unit:
    """One answerable piece: its section title, its entry's heading ("" if none), its text.

    `text` is resume text, with soft line breaks joined by spaces and a bullet's marker
    dropped; `entry` numbers the entry it belongs to (-1: none), `kind` says what it is
    (the entry heading itself is a unit of kind "head"; a "line" is one of several lines
    of plain text that are items rather than sentences).
    """

    section: str
    head: str
    text: str
    kind: Kind
    entry: int


def units_of(text: str, *, markdown: bool) -> list[Unit]:
    lines = text.split("\n") if markdown else _logical_lines(text.split("\n"))
    reader = _Reader()
    for title, body in _sections(lines, markdown=markdown):
        reader.section(title, body, markdown=markdown)
    return reader.units


def plain(line: str) -> str:
    """A heading or entry line without Markdown marks: `### *Role*` is `Role`."""
    if match := _HEADING.match(line):
        line = match[2]
    return line.replace("*", "").strip().strip("_`").rstrip(":").strip()


def sentences(paragraph: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        candidate = paragraph[start : match.start()].rstrip()
        if _ABBREVIATION.search(candidate.rstrip("\"')]")):
            continue
        parts.append(candidate)
        start = match.end()
    parts.append(paragraph[start:].strip())
    return [part for part in parts if part]


def _sections(lines: list[str], *, markdown: bool) -> Iterator[tuple[str, list[str]]]:
    """(title, lines) split at section headings: the shallowest after the first (the name)."""
    levels = [len(m[1]) for line in lines if (m := _HEADING.match(line))] if markdown else []
    level = min(levels[1:] or levels or [0])
    title, body = "", []
    for line in lines:
        if (heading := _section_title(line, level)) is None:
            body.append(line)
        else:
            yield title, body
            title, body = heading, []
    yield title, body


def _section_title(line: str, level: int) -> str | None:
    if match := _HEADING.match(line):
        return plain(match[2]) if len(match[1]) <= level else None
    if not level and plain(line).casefold() in BARE_TITLES:
        return plain(line)
    return None


def _logical_lines(lines: list[str]) -> list[str]:
    """Plain text's lines with soft-wrapped ones joined (a PDF wraps at its page width)."""
    width = max((len(line) for line in lines), default=0)
    joined: list[str] = []
    for line in lines:
        if joined and _continues(joined[-1], line, width):
            joined[-1] = f"{joined[-1].rstrip()} {line.strip()}"
        else:
            joined.append(line)
    return joined


def _continues(previous: str, line: str, width: int) -> bool:
    stripped = line.strip()
    if not stripped or not previous.strip() or _BULLET.match(line):
        return False
    if plain(line).casefold() in BARE_TITLES or plain(previous).casefold() in BARE_TITLES:
        return False
    if _ADDRESS.match(stripped):  # an e-mail address or link starts a line of its own
        return False
    if _BULLET.match(previous) and line[:1].isspace():
        return True
    last_word = previous.rsplit(None, 1)[-1].casefold()
    wrapped = len(previous) >= 0.85 * width and previous.rstrip()[-1] not in ".!?)"
    return (
        stripped[0].islower()
        or previous.rstrip().endswith(_JOINING_ENDS)
        or last_word in _JOINING_WORDS
        or wrapped
    )


class _Reader:
    """Walks each section's blocks once, collecting units and entry heads."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self._entries = 0
        self._title, self._markdown = "", True
        self._entry, self._head, self._headed, self._awaits_date = -1, "", False, False

    def section(self, title: str, lines: list[str], *, markdown: bool) -> None:
        self._title, self._markdown = title, markdown
        self._end_entry()
        for block in _blocks(lines, markdown=markdown):
            self._block(block)

    def _block(self, block: list[str]) -> None:
        if _HEADING.match(block[0]):
            self._start_entry(plain(block[0]), headed=True)
            block = block[1:]
        bullets = next((i for i, line in enumerate(block) if _BULLET.match(line)), len(block))
        lead, items = block[:bullets], block[bullets:]
        if lead and self._awaits_date and _is_date_line(lead[0]):
            self._extend_head(plain(lead[0]))
            lead = lead[1:]
        elif lead and not self._headed:
            self._end_entry()  # a new paragraph ends an entry that a paragraph began
        if lead and items and not self._headed:
            head = lead if self._markdown else lead[-1:]
            if len(" ".join(head)) <= MAX_HEAD_CHARS:
                self._paragraph(lead[: len(lead) - len(head)])
                self._start_entry(" ".join(line.strip() for line in head), headed=False)
                lead = []
        self._paragraph(lead)
        self._awaits_date = self._awaits_date and not (lead or items)
        for item in _items(items):
            self._add(_BULLET.sub("", item, count=1).strip(), "bullet")

    def _paragraph(self, lines: list[str]) -> None:
        """Table rows one by one; other lines as sentences (plain text: line by line)."""
        rows = [line for line in lines if _ROW.search(line)]
        if rows and len(rows) == len(lines):
            for row in rows:
                if not _RULE_ROW.match(row):
                    self._add(row.strip().strip("|").strip(), "row")
            return
        if not self._markdown:  # a plain line that is not a sentence is an item of its own
            items = [line.strip() for line in lines if not line.rstrip().endswith((".", "!", "?"))]
            if len(items) == len(lines) > 1:
                for item in items:
                    self._add(item, "line")
                return
        paragraphs = [" ".join(line.strip() for line in lines)] if self._markdown else lines
        for paragraph in paragraphs:
            for sentence in sentences(paragraph.strip()):
                self._add(sentence, "sentence")

    def _start_entry(self, head: str, *, headed: bool) -> None:
        self._entry, self._entries = self._entries, self._entries + 1
        self._head, self._headed, self._awaits_date = head, headed, headed
        self._add(head, "head")

    def _end_entry(self) -> None:
        self._entry, self._head, self._headed, self._awaits_date = -1, "", False, False

    def _extend_head(self, line: str) -> None:
        """An entry's date line joins its heading (in the head unit, too)."""
        self._head, self._awaits_date = f"{self._head} \u00b7 {line}", False
        index = next(i for i in range(len(self.units) - 1, -1, -1) if self.units[i].kind == "head")
        self.units[index] = Unit(self._title, "", self._head, "head", self._entry)

    def _add(self, text: str, kind: Kind) -> None:
        if text:
            head = "" if kind == "head" else self._head
            self.units.append(Unit(self._title, head, text, kind, self._entry))


def _is_date_line(line: str) -> bool:
    return len(line) <= 120 and bool(_DATED.search(line))


def _blocks(lines: list[str], *, markdown: bool) -> Iterator[list[str]]:
    """Runs of lines split at blank lines and headings; plain text also at each new entry."""
    block: list[str] = []
    for line in [*lines, ""]:
        starts = _HEADING.match(line) if markdown else _starts_entry(block, line)
        if block and (not line.strip() or starts):
            yield block
            block = []
        if line.strip():
            block.append(line)


def _starts_entry(block: list[str], line: str) -> bool:
    """In plain text, a line that is not a bullet after bullets starts a new block."""
    return bool(block) and not _BULLET.match(line) and bool(_BULLET.match(block[-1]))


def _items(lines: list[str]) -> Iterator[str]:
    """Bullets with their continuation lines joined by spaces."""
    item: list[str] = []
    for line in lines:
        if _BULLET.match(line) and item:
            yield " ".join(item)
            item = []
        item.append(line.strip())
    if item:
        yield " ".join(item)
