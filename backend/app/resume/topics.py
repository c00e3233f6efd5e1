"""How recruiters ask, and which lines of a resume answer them.

A `Topic` recognises a kind of question ("Would she need sponsorship?") and knows what
answers it: lines that say certain words (visa, permit, citizen), or the lines of a kind
of section (Education), or the current job's heading. When nothing in the resume answers a
topic the reply says the resume does not cover it rather than quoting something nearby.
"""

import re
from dataclasses import dataclass
from enum import Enum


class Shape(Enum):
    """How much of what matches a topic makes the answer."""

    BEST = "best"  # the best line: "What's her notice period?"
    ALL = "all"  # every line of its section: "Which languages does she speak?"
    CURRENT = "current"  # the current (else most recent) job's heading
    PREVIOUS = "previous"  # the heading of the job before it


@dataclass(frozen=True, slots=True)
class Topic:
    """`asks` matches the question; `answers` a line, or `sections` a section title."""

    name: str
    asks: re.Pattern[str]
    absent: str  # "... doesn't say anything about {absent}"
    answers: re.Pattern[str] | None = None
    sections: re.Pattern[str] | None = None
    shape: Shape = Shape.BEST
    most: int = 1  # lines shown for BEST
    prefer: tuple[re.Pattern[str], ...] = ()  # lines saying more of these come first
    top_first: bool = False  # lines from the resume's head (name, contact) come first
    ask_directly: bool = True  # when the resume is silent, suggest asking the person
    generic: re.Pattern[str] | None = None  # words that name the topic, not a part of it


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


EXPERIENCE_SECTIONS = _words(r"experience|employment|work|career|positions|history")

TOPICS: tuple[Topic, ...] = (
    Topic(
        "salary",
        _words(
            r"\b(salary|salaries|compensation|remuneration|pay|paid|wages?|day rate|hourly rate"
            r"|how much (does|would|will) (she|he|they|\w+) (make|earn|charge))\b"
        ),
        "salary expectations",
        answers=_words(r"salar|compensation|remuneration|day rate|hourly rate|expected pay"),
    ),
    Topic(
        "personal",
        _words(
            r"\b(how old|age|born|birthday|date of birth|married|marital|wife|husband|spouse"
            r"|children|kids|family|religio\w*|gender|pregnan\w*|health|disabilit\w*)\b"
        ),
        "personal details like that",
        answers=_words(r"\b(born|date of birth|married|children)\b"),
        ask_directly=False,
    ),
    Topic(
        "visa",
        _words(
            r"\b(visas?|sponsor\w*|work permit|permits?|right to work|citizen\w*|authori[sz]\w*"
            r"|eligible|green card|nationality|immigration)\b"
        ),
        "visas, sponsorship or the right to work",
        answers=_words(
            r"visa|sponsor|(work|residence|residency) permit|permit (is )?needed|right to work"
            r"|citizen|authori[sz]ed to work|work authori|nationality|eligible to work"
        ),
    ),
    Topic(
        "notice",
        _words(
            r"\b(notice|start date|(could|can|would|will) (she|he|they|\w+) start|when\b.*\bstart"
            r"|how soon|earliest|available|availability|begin)\b"
        ),
        "a notice period or start date",
        answers=_words(
            r"notice|\bavailable (from|immediately|in|on|to start)|availability\s*:|earliest start"
            r"|start date|\bstart(ing)? (in|from|on)\b"
        ),
        most=2,
    ),
    Topic(
        "relocation",
        _words(r"\b(relocat\w*|move|moving|abroad|another (country|city)|willing to travel)\b"),
        "relocation",
        answers=_words(r"relocat|willing to move|open to mov|abroad"),
    ),
    Topic(
        "remote",
        _words(r"\b(remote\w*|hybrid|on-?site|in[- ]office|office|from home|wfh|telecommut\w*)\b"),
        "remote or on-site work",
        answers=_words(r"remote|hybrid|on-?site|office|from home"),
    ),
    Topic(
        "contact",
        _words(
            r"\b(contact|reach|e-?mail|phone|call|get in touch|linkedin|github|website"
            r"|portfolio|telephone|address)\b"
        ),
        "contact details",
        answers=_words(r"@|https?://|www\.|linkedin|github|\+\d[\d ()./-]{6,}\d|\bphone\b|\btel\b"),
        most=3,
        top_first=True,
        ask_directly=False,
    ),
    Topic(
        "certifications",
        _words(r"\b(certif\w*|certificates?|accredit\w*|licen[cs]e[sd]?|qualifications?)\b"),
        "certifications",
        sections=_words(r"certif|licen[cs]|accredit|qualification"),
        answers=_words(r"certif"),
        shape=Shape.ALL,
    ),
    Topic(
        "education",
        _words(
            r"\b(degrees?|stud(y|ied|ies)|universit\w*|college|school|educat\w*|graduat\w*"
            r"|masters?|master's|bachelors?|bachelor's|msc|bsc|m\.sc|b\.sc|phd|ph\.d|doctorate"
            r"|diploma|alma mater|academic)\b"
        ),
        "education",
        sections=_words(r"educat|academic|studies|qualification"),
        generic=_words(
            r"\b(degrees?|stud(y|ied|ies)|universit\w*|college|school|educat\w*|graduat\w*"
            r"|alma mater|academic|attend\w*)\b"
        ),
        shape=Shape.ALL,
    ),
    Topic(
        "skills",
        _words(r"\b(skills?|skillset|tech(nical)? stack|technolog\w*|tools|expertise)\b"),
        "skills",
        sections=_words(r"skill|technolog|expertise|competenc"),
        shape=Shape.ALL,
        generic=_words(
            r"\b(skills?|skillset|tech(nical)?|stack|technolog\w*|tools|expertise|main|key|top"
            r"|core|strongest|best|primary)\b"
        ),
    ),
    Topic(
        "languages",
        _words(
            r"^(?!.*\b(programming|coding|scripting)\b).*\b(speaks?|spoken|languages?"
            r"|fluen\w*|bilingual|mother tongue)\b"
        ),
        "the languages spoken",
        sections=_words(r"language"),
        shape=Shape.ALL,
    ),
    Topic(
        "previous",
        _words(
            r"\b(before (that|this|then|joining|moving|(?-i:[A-Z])\w+)|previous\w*"
            r"|prior (job|role|employer)|former\w*)\b"
        ),
        "an earlier job",
        sections=EXPERIENCE_SECTIONS,
        shape=Shape.PREVIOUS,
    ),
    Topic(
        "current",
        _words(
            r"^(?=.*\b(current\w*|now|right now|at the moment|presently|these days|today"
            r"|at present|latest|most recent)\b)(?=.*\b(role|job|title|position|work\w*"
            r"|employ\w*|company|firm|do|doing|at|for)\b)"
        ),
        "a current job",
        sections=EXPERIENCE_SECTIONS,
        shape=Shape.CURRENT,
    ),
    Topic(
        "experience",
        _words(
            r"\b(years? of experience|how (many|much) years|how experienced|how long has\b.*"
            r"\b(worked|been)|years in (the )?(industry|field|business)|experience level"
            r"|seniority|how senior)\b"
        ),
        "years of experience",
        answers=_words(r"\b\d+\+?\s*(years|yrs)\b"),
        prefer=(_words(r"experience"),),
    ),
    Topic(
        "leadership",
        _words(
            r"\b(lead|led|leader\w*|leading|manag\w*|team\w*|mentor\w*|supervis\w*"
            r"|direct reports|people)\b"
        ),
        "leading or managing people",
        answers=_words(
            r"\b(lead|led|leading|leader\w*|manag\w*|mentor\w*|supervis\w*|head of|hired"
            r"|team of)\b"
        ),
        prefer=(_words(r"\bteams? of\b"), _words(r"\bteams?\b")),
    ),
)

OVERVIEW = _words(
    r"^\W*(who is\b|tell me about (her|him|them|\w+)\W*$|what does (she|he|they|\w+) do\W*$"
    r"|.*\b(summar\w*|introduce|introduction|overview)\b|.*\babout (her|him|them)(self)?\W*$)"
)
OVERVIEW_SECTIONS = _words(r"^(summary|about|about me|profile|overview|introduction|objective)$")


def topics_of(question: str, limit: int = 2) -> list[Topic]:
    """The topics a question asks about, most specific first (at most `limit`)."""
    return [topic for topic in TOPICS if topic.asks.search(question)][:limit]


def asks_overview(question: str) -> bool:
    return bool(OVERVIEW.search(question))


def pronoun(question: str) -> str | None:
    """The possessive the visitor used for the person ("her" for "Where did she study?")."""
    words = set(re.findall(r"[a-z]+", question.casefold()))
    for possessive, forms in (("her", {"she", "her", "hers"}), ("his", {"he", "him", "his"})):
        if words & forms:
            return possessive
    if words & {"they", "them", "their"}:
        return "their"
    return None
