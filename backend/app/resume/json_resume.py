"""Render a JSON Resume document (https://jsonresume.org/schema) as readable Markdown.

Every field is optional and may have the wrong type; such values are skipped or shown
generically rather than failing, because the resume is written by hand.
"""

import re
from collections.abc import Callable, Mapping
from datetime import date

type Entry = Mapping[str, object]
type EntryRenderer = Callable[[Entry], list[str]]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})(?:-\d{2})?")
_SKIPPED_KEYS = frozenset({"$schema", "meta"})
_MAX_DEPTH = 6


def text_of(value: object) -> str:
    """A scalar as trimmed text; containers and missing values become ""."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float | date):
        return str(value)
    return ""


def field(entry: Entry, *keys: str) -> str:
    """The first non-empty scalar among `keys` (older schema versions renamed some)."""
    for key in keys:
        if found := text_of(entry.get(key)):
            return found
    return ""


def _texts(entry: Entry, key: str) -> list[str]:
    value = entry.get(key)
    items = value if isinstance(value, list) else [value]
    return [text for item in items if (text := text_of(item))]


def _entries(value: object) -> list[Entry]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, Mapping)]


def _month(value: str) -> str:
    match = _ISO_DATE.fullmatch(value)
    if match is None or not 1 <= int(match[2]) <= 12:
        return value
    return f"{_MONTHS[int(match[2]) - 1]} {match[1]}"


def _period(entry: Entry, start_key: str = "startDate", end_key: str = "endDate") -> str:
    start, end = _month(field(entry, start_key)), _month(field(entry, end_key))
    if start:
        return f"{start} \u2013 {end or 'present'}"
    return end


def _joined(*parts: str, sep: str = " — ") -> str:
    return sep.join(part for part in parts if part)


def _location(basics: Entry) -> str:
    place = basics.get("location")
    if isinstance(place, Mapping):
        return _joined(*(field(place, key) for key in ("city", "region", "countryCode")), sep=", ")
    return text_of(place)


def _render_basics(basics: Entry) -> list[str]:
    lines: list[str] = []
    if name := field(basics, "name"):
        lines += [f"# {name}", ""]
    if label := field(basics, "label"):
        lines += [label, ""]
    contact = (field(basics, "email"), field(basics, "phone"), field(basics, "url", "website"))
    if contact_line := _joined(*contact, _location(basics), sep=" · "):
        lines += [contact_line, ""]
    for profile in _entries(basics.get("profiles")):
        handle = _joined(field(profile, "username"), field(profile, "url"), sep=", ")
        lines.append(f"- {_joined(field(profile, 'network'), handle, sep=': ')}")
    if summary := field(basics, "summary"):
        lines += ["", "## Summary", "", summary]
    return lines


def _render_role(entry: Entry, title_key: str, org_keys: tuple[str, ...]) -> list[str]:
    heading = _joined(field(entry, title_key), field(entry, *org_keys))
    lines = [f"### {heading}"] if heading else []
    if details := _joined(_period(entry), field(entry, "location"), field(entry, "url"), sep=" · "):
        lines.append(details)
    if summary := field(entry, "summary", "description"):
        lines += ["", summary]
    if highlights := _texts(entry, "highlights"):
        lines += ["", *(f"- {item}" for item in highlights)]
    return lines


def _render_work(entry: Entry) -> list[str]:
    return _render_role(entry, "position", ("name", "company"))


def _render_volunteer(entry: Entry) -> list[str]:
    return _render_role(entry, "position", ("organization",))


def _render_education(entry: Entry) -> list[str]:
    degree = _joined(field(entry, "studyType"), field(entry, "area"), sep=" in ")
    heading = _joined(degree, field(entry, "institution"))
    lines = [f"### {heading}"] if heading else []
    score = field(entry, "score", "gpa")
    if details := _joined(_period(entry), score and f"Score: {score}", sep=" · "):
        lines.append(details)
    if courses := _texts(entry, "courses"):
        lines += ["", "Courses: " + ", ".join(courses)]
    return lines


def _render_project(entry: Entry) -> list[str]:
    lines = _render_role(entry, "name", ("entity",))
    roles = _texts(entry, "roles")
    keywords = _texts(entry, "keywords")
    if roles or keywords:
        lines.append("")
    if roles:
        lines.append("Roles: " + ", ".join(roles))
    if keywords:
        lines.append("Keywords: " + ", ".join(keywords))
    return lines


def _bullet(title: str, detail: str = "", note: str = "") -> list[str]:
    head = f"**{title}**" if title else ""
    if note:
        head = _joined(head, f"({note})", sep=" ")
    line = _joined(head, detail, sep=": ")
    return [f"- {line}"] if line else []


def _render_award(entry: Entry) -> list[str]:
    detail = _joined(field(entry, "awarder"), field(entry, "summary"), sep="; ")
    return _bullet(field(entry, "title"), detail, _month(field(entry, "date")))


def _render_certificate(entry: Entry) -> list[str]:
    detail = _joined(field(entry, "issuer"), field(entry, "url"), sep=", ")
    return _bullet(field(entry, "name"), detail, _month(field(entry, "date")))


def _render_publication(entry: Entry) -> list[str]:
    detail = _joined(field(entry, "publisher"), field(entry, "summary"), field(entry, "url"))
    return _bullet(field(entry, "name"), detail, _month(field(entry, "releaseDate")))


def _render_skill(entry: Entry) -> list[str]:
    keywords = ", ".join(_texts(entry, "keywords"))
    return _bullet(field(entry, "name"), keywords, field(entry, "level"))


def _render_language(entry: Entry) -> list[str]:
    return _bullet(field(entry, "language", "name"), field(entry, "fluency", "level"))


def _render_interest(entry: Entry) -> list[str]:
    return _bullet(field(entry, "name"), ", ".join(_texts(entry, "keywords")))


def _render_reference(entry: Entry) -> list[str]:
    return _bullet(field(entry, "name"), field(entry, "reference"))


_SECTIONS: dict[str, tuple[str, EntryRenderer]] = {
    "work": ("Work experience", _render_work),
    "volunteer": ("Volunteering", _render_volunteer),
    "projects": ("Projects", _render_project),
    "education": ("Education", _render_education),
    "awards": ("Awards", _render_award),
    "certificates": ("Certificates", _render_certificate),
    "publications": ("Publications", _render_publication),
    "skills": ("Skills", _render_skill),
    "languages": ("Languages", _render_language),
    "interests": ("Interests", _render_interest),
    "references": ("References", _render_reference),
}


def _title(key: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[_\-]+", " ", key).split()
    return " ".join(words).capitalize() or key


def _inline(value: Mapping[object, object]) -> str:
    """`Key: value; Key: value` when every value is a scalar, else ""."""
    texts = {_title(str(key)): text_of(item) for key, item in value.items()}
    if not all(texts.values()):
        return ""
    return "; ".join(f"{key}: {text}" for key, text in texts.items())


def _generic(value: object, indent: str = "", depth: int = 0) -> list[str]:
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, Mapping):
        lines: list[str] = []
        for key, item in value.items():
            if text := text_of(item):
                lines.append(f"{indent}- {_title(str(key))}: {text}")
            elif nested := _generic(item, indent + "  ", depth + 1):
                lines += [f"{indent}- {_title(str(key))}:", *nested]
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            inline = _inline(item) if isinstance(item, Mapping) else ""
            lines += [f"{indent}- {inline}"] if inline else _generic(item, indent, depth + 1)
        return lines
    text = text_of(value)
    return [f"{indent}- {text}"] if text else []


def _render_known(value: object, render: EntryRenderer) -> list[str]:
    items = value if isinstance(value, list) else [value]
    lines: list[str] = []
    for item in items:
        block = render(item) if isinstance(item, Mapping) else _generic(item)
        if block and lines and not block[0].startswith("- "):
            lines.append("")
        lines += block
    return lines


def _render_section(key: str, value: object) -> list[str]:
    if key in _SECTIONS:
        title, render = _SECTIONS[key]
        body = _render_known(value, render)
    else:
        title, body = _title(key), _generic(value)
    return ["", f"## {title}", "", *body] if body else []


def render_json_resume(document: Entry) -> str:
    """Markdown for a JSON Resume: name, headline and contact first, then one section per key."""
    basics = document.get("basics")
    lines = _render_basics(basics) if isinstance(basics, Mapping) else []
    known = [key for key in _SECTIONS if key in document]
    others = [key for key in document if key not in _SECTIONS and key != "basics"]
    for key in known + others:
        if key not in _SKIPPED_KEYS:
            lines += _render_section(key, document[key])
    return "\n".join(lines)
