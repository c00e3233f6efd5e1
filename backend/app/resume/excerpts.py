"""Answer from the resume itself when no model can: its passages that best match the question.

A passage is a whole short section, or one paragraph or bullet of a longer one, ranked by BM25
over stemmed words. Its text is verbatim resume text; a bullet under an entry (a job, a degree)
is preceded by the entry's heading lines, each verbatim, joined by a newline.

The BM25 index (bm25s and numpy, a second of start-up) is built on the first search, so
start-up does not pay for it: only the first answer from excerpts does, once.
"""

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from app.resume.loader import Resume

MAX_SECTION_CHARS = 600
MAX_PARENT_CHARS = 200

_OFFLINE = (
    "The assistant is offline right now, so here are the parts of {whose} that best match "
    "your question:"
)
_NO_MATCH = (
    "The assistant is offline right now, and no part of {whose} matches that question. "
    "Try asking about experience, skills, education or languages."
)
_OVERVIEW = (
    "The assistant is offline right now, and no part of {whose} matches that question "
    "directly, so here is how it introduces them:"
)
_OVERVIEW_SECTIONS = ("summary", "about", "about me", "profile", "overview", "introduction")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)[\s#]*$")
_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u25aa\u2023\u25e6\u00b7]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"\w\w+")
# Question filler ("has she used X?", "does she know X?") that matches the wrong passages.
_FILLER = {"tell", "please", "could", "would", "also", "ever", "like", "know", "knows"}
_OWN_STOPWORDS = frozenset(_FILLER | {"use", "used", "uses", "using"})
# Words a visitor uses for a section that the section itself rarely contains ("where did she
# study?" for Education). They are indexed with the section's passages, never shown.
_SECTION_CUES: tuple[tuple[str, str], ...] = (
    ("language languages", "speak speaks spoken fluent fluency native tongue"),
    ("education academic studies qualifications", "study studied university degree school"),
    ("experience employment work career", "work worked job jobs employer companies career"),
    ("skills expertise technologies competencies", "skills technologies tools stack expertise"),
    ("projects portfolio", "projects built open source"),
    ("certifications certificates licenses", "certified certificate certifications"),
    ("interests hobbies activities", "hobbies interests enjoy free time"),
    ("summary profile about objective", "summary about background overview"),
    ("contact", "contact email phone reach location based lives"),
)
# Bare section titles that start a section in text without Markdown headings (PDF, plain text).
_BARE_TITLES = frozenset(
    {"summary", "profile", "about", "experience", "work experience", "employment", "education"}
    | {"skills", "projects", "languages", "certifications", "certificates", "interests"}
)


@dataclass(frozen=True, slots=True)
class Passage:
    section: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class _Piece:
    """A passage before scoring: `head` is its entry's heading lines ("" if none)."""

    section: str
    head: str
    body: str

    @property
    def text(self) -> str:
        return f"{self.head}\n{self.body}" if self.head else self.body


class _Analyzer:
    """Lower-cased, stop-word-free, Snowball-stemmed words; the same for passages and questions."""

    def __init__(self) -> None:
        import Stemmer  # type: ignore[import-not-found]
        from bm25s.stopwords import STOPWORDS_EN_PLUS  # type: ignore[import-untyped]

        self._stemmer = Stemmer.Stemmer("english")
        self._stopwords = frozenset(STOPWORDS_EN_PLUS) | _OWN_STOPWORDS

    def tokens(self, text: str, ignored: frozenset[str] = frozenset()) -> list[str]:
        skipped = self._stopwords | ignored
        words = [word for word in _WORD.findall(text.casefold()) if word not in skipped]
        stems: list[str] = self._stemmer.stemWords(words)
        return stems


class _Ranker:
    """BM25 over the passages' stemmed words."""

    def __init__(self, owner: str, pieces: list[_Piece]) -> None:
        import bm25s  # type: ignore[import-untyped]

        self.analyzer = _Analyzer()
        corpus = [self.analyzer.tokens(_indexed_text(p, owner, self.analyzer)) for p in pieces]
        self.vocabulary = {token for tokens in corpus for token in tokens}
        self.bm25 = bm25s.BM25()
        if self.vocabulary:  # bm25s divides by the mean passage length
            self.bm25.index(corpus, show_progress=False)


class ExcerptIndex:
    def __init__(self, resume: Resume, pieces: list[_Piece]) -> None:
        self._resume = resume
        self._pieces = pieces
        self._ignored = frozenset(_WORD.findall(resume.owner_name.casefold()))

    @classmethod
    def build(cls, resume: Resume) -> "ExcerptIndex":
        return cls(resume, list(_pieces_of(resume.text)))

    @functools.cached_property
    def _ranker(self) -> _Ranker:
        return _Ranker(self._resume.owner_name, self._pieces)

    def search(self, question: str, limit: int = 3) -> list[Passage]:
        """The best `limit` passages for `question`, best first; only those that match at all."""
        return [
            Passage(self._pieces[i].section, self._pieces[i].text, score)
            for i, score in self._ranked(question, limit)
        ]

    def answer(self, question: str, limit: int = 3) -> str:
        """One fixed sentence, then the passages under their section labels, best first.

        Passages of one entry (a job, say) share a block that shows the entry's head once, and
        a label is not repeated for consecutive blocks of one section.
        """
        whose = f"{self._resume.owner_name}'s resume" if self._resume.owner_name else "the resume"
        ranked = self._ranked(question, limit)
        opening = _OFFLINE
        if not ranked:  # a general question ("What does she do?"): the resume's introduction
            ranked, opening = self._overview(), _OVERVIEW
        if not ranked:
            return _NO_MATCH.format(whose=whose)
        groups: dict[tuple[str, str], list[str]] = {}
        for i, _ in ranked:
            piece = self._pieces[i]
            groups.setdefault((piece.section, piece.head), []).append(piece.body)
        blocks, shown = [opening.format(whose=whose)], ""
        for (section, head), bodies in groups.items():
            text = "\n".join([head, *bodies]) if head else "\n\n".join(bodies)
            blocks.append(f"**{section}**\n\n{text}" if section and section != shown else text)
            shown = section
        return "\n\n".join(blocks)

    def _overview(self) -> list[tuple[int, float]]:
        """The summary section's passages, or else the resume's first passage."""
        named = [
            (i, 0.0)
            for i, piece in enumerate(self._pieces)
            if piece.section.lower() in _OVERVIEW_SECTIONS
        ]
        return named or [(0, 0.0)] if self._pieces else []

    def _ranked(self, question: str, limit: int) -> list[tuple[int, float]]:
        ranker = self._ranker
        tokens = ranker.analyzer.tokens(question, self._ignored)
        tokens = [token for token in tokens if token in ranker.vocabulary]
        if not tokens or limit < 1:
            return []
        scores = [float(score) for score in ranker.bm25.get_scores(tokens)]
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [(i, scores[i]) for i in ranked[:limit] if scores[i] > 0]


def _indexed_text(piece: _Piece, owner: str, analyzer: _Analyzer) -> str:
    """The piece with its section title and the words visitors use for that kind of section."""
    title = "contact" if owner and piece.section == owner else piece.section
    heading = set(analyzer.tokens(title))
    cues = [cue for triggers, cue in _SECTION_CUES if heading & set(analyzer.tokens(triggers))]
    return "\n".join([piece.section, *cues, piece.text])


def _pieces_of(text: str) -> Iterator[_Piece]:
    for title, lines in _sections(text.split("\n")):
        body = "\n".join(lines).strip("\n")
        if title and body and len(body) <= MAX_SECTION_CHARS:
            yield _Piece(title, "", body)
        elif body:
            yield from (_Piece(title, head, piece) for head, piece in _split(body.split("\n")))


def _sections(lines: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(title, lines) split at section headings: the shallowest after the first (the name)."""
    levels = [len(m[1]) for line in lines if (m := _HEADING.match(line))]
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
        return _plain(match[2]) if len(match[1]) <= level else None
    if not level and _plain(line).casefold() in _BARE_TITLES:
        return _plain(line)
    return None


def _plain(title: str) -> str:
    return title.strip().strip("*_`").rstrip(":").strip()


def _split(lines: list[str]) -> Iterator[tuple[str, str]]:
    """Paragraphs and bullets of a long section, each with its entry's head ("" if none).

    An entry's head is its heading block or, in text without headings, a short paragraph that
    introduces a list; it is a passage of its own only when nothing under it is.
    """
    head = ""
    in_entry = pending = False
    for lead, items in _blocks(lines):
        if lead and (_HEADING.match(lead[0]) or not in_entry):
            if pending:
                yield "", head
            head, in_entry, pending = "\n".join(lead), bool(_HEADING.match(lead[0])), True
            if not in_entry and len(head) > MAX_PARENT_CHARS:
                yield from (("", chunk) for chunk in _chunks(lead))
                head, pending = "", False
        elif lead:
            yield from ((head, chunk) for chunk in _chunks(lead))
            pending = False
        for item in items:
            yield head, "\n".join(item)
            pending = False
    if pending:
        yield "", head


def _blocks(lines: list[str]) -> Iterator[tuple[list[str], list[list[str]]]]:
    """Runs of lines between blank lines and headings, as (lead lines, bullet items)."""
    block: list[str] = []
    for line in [*lines, ""]:
        if (not line.strip() or _HEADING.match(line)) and block:
            yield _split_items(block)
            block = []
        if line.strip():
            block.append(line)


def _split_items(block: list[str]) -> tuple[list[str], list[list[str]]]:
    lead: list[str] = []
    items: list[list[str]] = []
    for line in block:
        if _BULLET.match(line):
            items.append([line])
        elif items:
            items[-1].append(line)
        else:
            lead.append(line)
    return lead, items


def _chunks(lines: Sequence[str]) -> Iterator[str]:
    """A paragraph too long for one passage, as runs of whole lines."""
    run: list[str] = []
    for line in lines:
        if run and len("\n".join([*run, line])) > MAX_SECTION_CHARS:
            yield "\n".join(run)
            run = []
        run.append(line)
    if run:
        yield "\n".join(run)
