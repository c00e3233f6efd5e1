"""Answer from the resume itself when no model can: the lines that answer the question.

The resume is cut into bullets, sentences, table rows and entry headings (`passages`).
A question recruiters often ask (remote work, sponsorship, notice, current role...) is
answered by the lines that speak to it (`topics`), or by saying the resume is silent;
any other question by the lines that best match its words (BM25 over stemmed words, each
line indexed with its section title, its entry's heading and words visitors use for that
kind of section). `answer()` says whether anything matched, so callers can count the
questions the resume could not answer.

bm25s brings numpy, a third of a second of a cold start that most deployments (those with
a model) never need: `app.resume.excerpts.Excerpts` imports this module, and with it
bm25s, and builds the index, in a thread, the first time an answer needs it.
"""

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.resume.loader import Resume
from app.resume.passages import Unit, units_of
from app.resume.replies import Wording
from app.resume.topics import (
    EXPERIENCE_SECTIONS,
    OVERVIEW_SECTIONS,
    Shape,
    Topic,
    asks_overview,
    pronoun,
    topics_of,
)

MAX_LISTED = 8  # lines of a section listed whole ("Which languages does she speak?")
CLOSE_SCORE = 0.5  # other lines shown with the best one score at least this share of it
_WORD = re.compile(r"\w\w+")
_CURRENT = re.compile(r"\b(present|current|now|today|ongoing)\b", re.IGNORECASE)
# A name in a question: capitalised words ("Ruby on Rails", "Google Cloud"), not its first.
_NAME = re.compile(r"(?<=[\w,;:] )[A-Z][\w+#.-]*(?:(?: (?:on|of|&|for))? [A-Z][\w+#.-]*)*")
# Question filler ("has she used X?", "does she know X?") that matches the wrong lines.
_FILLER = {"tell", "please", "could", "would", "also", "ever", "like", "know", "knows"}

# Words a visitor uses for a section that the section itself rarely contains ("where did she
# study?" for Education). They are indexed with the section's lines, never shown.
_SECTION_CUES: tuple[tuple[str, str], ...] = (
    ("language languages", "speak speaks spoken fluent fluency native tongue"),
    ("education academic studies qualifications", "study studied university degree school"),
    ("experience employment work career", "work worked job jobs employer companies career"),
    (
        "skills expertise technologies competencies",
        "skills technologies tools stack expertise programming frameworks",
    ),
    ("projects portfolio", "projects built open source"),
    ("certifications certificates licenses", "certified certificate certifications"),
    ("interests hobbies activities", "hobbies interests enjoy free time"),
    ("summary profile about objective", "summary about background overview"),
    ("contact", "contact email phone reach location based lives"),
    ("availability", "notice start available join"),
)


@dataclass(frozen=True, slots=True)
class Passage:
    section: str
    head: str  # the entry's heading lines ("" when the line is not under an entry)
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class ExcerptAnswer:
    """The reply, and whether the resume answered: `matched` is False when nothing in it
    speaks to the question (a topic it is silent on, or no line matching at all)."""

    text: str
    matched: bool
    topic: str | None  # the recruiter topic recognised ("salary", "visa", ...), if any


@functools.cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS  # type: ignore[import-untyped]

    return frozenset(STOPWORDS_EN_PLUS) | _FILLER | {"use", "used", "uses", "using"}


class _Analyzer:
    """Lower-cased, stop-word-free, Snowball-stemmed words; the same for lines and questions."""

    def __init__(self) -> None:
        import Stemmer  # type: ignore[import-not-found]  # loaded on first use: see the docstring

        self._stemmer = Stemmer.Stemmer("english")
        self._stopwords = _stopwords()

    def tokens(self, text: str, ignored: frozenset[str] = frozenset()) -> list[str]:
        skipped = self._stopwords | ignored
        words = [word for word in _WORD.findall(text.casefold()) if word not in skipped]
        stems: list[str] = self._stemmer.stemWords(words)
        return stems


class ExcerptIndex:
    def __init__(self, resume: Resume, units: list[Unit], analyzer: _Analyzer) -> None:
        self._resume = resume
        self._units = units
        self._analyzer = analyzer
        self._ignored = frozenset(_WORD.findall(resume.owner_name.casefold()))
        self._top = next((u.section for u in units if u.section in ("", resume.owner_name)), "")
        self._wording = Wording(resume.owner_name, resume.text)
        corpus = [analyzer.tokens(self._indexed_text(unit)) for unit in units]
        self._vocabulary = {token for tokens in corpus for token in tokens}
        import bm25s  # type: ignore[import-untyped]  # loaded on first use: see the docstring

        self._bm25 = bm25s.BM25()
        if self._vocabulary:  # bm25s divides by the mean line length
            self._bm25.index(corpus, show_progress=False)

    @classmethod
    def build(cls, resume: Resume) -> "ExcerptIndex":
        units = units_of(resume.text, markdown=resume.format not in ("pdf", "text"))
        return cls(resume, units, _Analyzer())

    def search(self, question: str, limit: int = 3) -> list[Passage]:
        """The `limit` lines that best match the question's words, best first; only matches."""
        scores = self._scores(question)
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [self._passage(i, scores[i]) for i in ranked[:limit] if scores[i] > 0]

    def answer(self, question: str, limit: int = 3) -> ExcerptAnswer:
        """The lines that answer `question` (at most `limit` for a question of no known
        topic), under their section and entry, or a sentence saying the resume is silent."""
        named, absent = self._names(question)
        topics = topics_of(question)
        if topics:
            picked = [unit for topic in topics for unit in self._for_topic(topic, question)]
            if picked:
                return self._reply(_unique(picked), absent, topics[0].name)
            text = self._wording.not_covered(topics[0])
            return ExcerptAnswer(text, matched=False, topic=topics[0].name)
        if named and len(absent) == len(named):  # "Has she worked at Google?"
            return ExcerptAnswer(self._wording.absent(absent), matched=False, topic=None)
        summary = self._summary()
        if asks_overview(question) and summary:
            return self._reply(summary, absent, "overview")
        if picked := self._best(question, limit):
            return self._reply(picked, absent, None)
        text = self._wording.unmatched(summary, pronoun(question), top=self._top)
        return ExcerptAnswer(text, matched=False, topic=None)

    def _reply(self, units: Sequence[Unit], absent: list[str], topic: str | None) -> ExcerptAnswer:
        text = self._wording.quoted(units, top=self._top)
        if absent:
            text = f"{text}\n\n{self._wording.absent(absent)}"
        return ExcerptAnswer(text, matched=True, topic=topic)

    def _best(self, question: str, limit: int) -> list[Unit]:
        """The best-matching line and those close to it; an entry heading only when none of
        the entry's own lines is among them (it is shown above them anyway)."""
        scores = self._scores(question)
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        best = scores[ranked[0]] if ranked else 0.0
        close = [self._units[i] for i in ranked if best > 0 and scores[i] >= CLOSE_SCORE * best]
        lines = {unit.entry for unit in close if unit.kind != "head"}
        return [u for u in close if u.kind != "head" or u.entry not in lines][: max(limit, 0)]

    def _names(self, question: str) -> tuple[list[str], list[str]]:
        """Names in the question, and those the resume never mentions (any word missing)."""
        names = [
            name
            for name in _NAME.findall(question)
            if not set(_WORD.findall(name.casefold())) <= self._ignored
        ]
        absent = [
            name
            for name in names
            if any(t not in self._vocabulary for t in self._analyzer.tokens(name, self._ignored))
        ]
        return names, absent

    def _for_topic(self, topic: Topic, question: str) -> list[Unit]:
        if topic.shape is Shape.CURRENT:
            return self._current_job()
        if topic.shape is Shape.PREVIOUS:
            return self._jobs()[1:2]
        if topic.shape is Shape.ALL:  # without such a section, the lines its words match
            return self._listed(topic, question) or self._best(question, 3)
        candidates = [i for i, u in enumerate(self._units) if _says(topic, u)]
        if topic.top_first and any(self._units[i].section == self._top for i in candidates):
            candidates = [i for i in candidates if self._units[i].section == self._top]
        scores = self._scores(question)

        def rank(i: int) -> tuple[int, int, float, int]:
            unit = self._units[i]
            preferred = sum(bool(pattern.search(unit.text)) for pattern in topic.prefer)
            top = topic.top_first and unit.section == self._top
            return (-int(top), -preferred, -scores[i], i)

        return [self._units[i] for i in sorted(candidates, key=rank)[: topic.most]]

    def _listed(self, topic: Topic, question: str) -> list[Unit]:
        """A section's lines (its entries' headings when it has entries), narrowed to those
        naming what the question names ("Does she speak French?")."""
        sections = topic.sections
        units = [u for u in self._units if sections is not None and sections.search(u.section)]
        if any(unit.kind == "head" for unit in units):
            units = [unit for unit in units if unit.kind == "head"]
        if not units and topic.answers is not None:
            units = [unit for unit in self._units if _says(topic, unit)]
        generic = topic.generic or topic.asks
        words = set(self._analyzer.tokens(generic.sub(" ", question), self._ignored))
        named = [u for u in units if words & set(self._analyzer.tokens(u.text))]
        return (named if named and len(named) < len(units) else units)[:MAX_LISTED]

    def _jobs(self) -> list[Unit]:
        """The headings of the experience sections' entries, in the resume's order."""
        jobs = [u for u in self._units if EXPERIENCE_SECTIONS.search(u.section)]
        return [unit for unit in jobs if unit.kind == "head"]

    def _current_job(self) -> list[Unit]:
        """The heading of the job marked present (else the first job), or the headline."""
        heads = self._jobs()
        current = [unit for unit in heads if _CURRENT.search(unit.text)]
        if current or heads:
            return (current or heads)[:1]
        headline = self._resume.headline
        return [u for u in self._units if headline and u.text == headline][:1]

    def _summary(self) -> list[Unit]:
        """The first two sentences of the resume's own summary, if it has one."""
        units = [u for u in self._units if OVERVIEW_SECTIONS.search(u.section)]
        return units[:2]

    def _scores(self, question: str) -> list[float]:
        tokens = self._analyzer.tokens(question, self._ignored)
        tokens = [token for token in tokens if token in self._vocabulary]
        if not tokens:
            return [0.0] * len(self._units)
        return [float(score) for score in self._bm25.get_scores(tokens)]

    def _passage(self, index: int, score: float) -> Passage:
        unit = self._units[index]
        return Passage(unit.section, unit.head, unit.text, score)

    def _indexed_text(self, unit: Unit) -> str:
        """The line with its section title, entry heading and the words visitors use for
        that kind of section."""
        title = "contact" if unit.section == self._top else unit.section
        heading = set(self._analyzer.tokens(title))
        cues = [
            cue for triggers, cue in _SECTION_CUES if heading & set(self._analyzer.tokens(triggers))
        ]
        return "\n".join([title, *cues, unit.head, unit.text])


def _says(topic: Topic, unit: Unit) -> bool:
    return topic.answers is not None and bool(topic.answers.search(unit.text))


def _unique(units: list[Unit]) -> list[Unit]:
    return list(dict.fromkeys(units))
