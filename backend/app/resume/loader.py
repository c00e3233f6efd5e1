"""Load the resume once at start-up and turn it into prompt-ready text.

Every failure becomes a one-sentence `ResumeError` that names the file and the problem.
"""

import io
import json
import re
import stat
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.errors import ResumeError

if TYPE_CHECKING:
    import yaml
    from docx.table import Table
    from docx.text.paragraph import Paragraph
from app.resume.json_resume import field, render_json_resume

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".pdf": "pdf",
    ".docx": "docx",
}
MAX_NAME_CHARS = 80
MAX_HEADLINE_CHARS = 120

_NEWLINES = re.compile(r"\r\n?|[\v\f\x85\u2028\u2029]")
_BLANK_RUNS = re.compile(r"\n{3,}")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)[\s#]*$")
_UNDERLINE = re.compile(r"^(=+|-+)$")
_CONTACT = re.compile(r"@|https?://|www\.|\b(github|linkedin)\b|\+?\d[\d ()./-]{7,}\d", re.I)
_SECTION_WORDS = frozenset(
    {"summary", "profile", "about", "contact", "objective", "experience", "work", "employment"}
    | {"education", "skills", "projects", "languages", "certifications", "interests"}
)
_KINDS: dict[type, str] = {type(None): "nothing", list: "a list", str: "a string"}


@dataclass(frozen=True, slots=True)
class Resume:
    text: str
    owner_name: str
    headline: str
    source: Path
    format: str


def load_resume(path: Path, max_bytes: int) -> Resume:
    """Read, convert and normalise the resume at `path`, or raise `ResumeError`."""
    fmt = _check_file(path, max_bytes)
    data = _read_bytes(path)
    document: Mapping[str, object] | None = None
    if fmt in ("json", "yaml"):
        document = _parse_structured(path, _decode(path, data), fmt)
        raw = render_json_resume(document)
    else:
        raw = _EXTRACTORS[fmt](path, data)
    text = normalise(raw)
    if not text:
        raise ResumeError(f"Resume file {path} {_EMPTY_HINTS[fmt]}.")
    basics = _basics(document)
    name = _shorten(field(basics, "name"), MAX_NAME_CHARS) or _owner_name(text)
    headline = field(basics, "label") or _headline(text, name)
    return Resume(text, name, _shorten(headline, MAX_HEADLINE_CHARS), path, fmt)


def _basics(document: Mapping[str, object] | None) -> Mapping[str, object]:
    basics = document.get("basics") if document else None
    return basics if isinstance(basics, Mapping) else {}


def normalise(text: str) -> str:
    """Unify newlines, drop control characters and trailing spaces, collapse blank runs."""
    text = _NEWLINES.sub("\n", text)
    text = "".join(
        char
        for char in text
        if char in "\n\t" or (char != "\ufeff" and unicodedata.category(char) != "Cc")
    )
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _check_file(path: Path, max_bytes: int) -> str:
    """The resume's format, once the path is known to be a regular file of allowed size."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ResumeError(f"Resume file {path} does not exist (check RESUME_PATH).") from exc
    except OSError as exc:
        raise ResumeError(f"Resume file {path} cannot be read ({_reason(exc)}).") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ResumeError(f"Resume path {path} is a directory, not a file.")
    if not stat.S_ISREG(info.st_mode):
        raise ResumeError(f"Resume path {path} is not a regular file.")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        shown = f"unsupported extension {suffix!r}" if suffix else "no extension"
        supported = ", ".join(sorted(FORMATS))
        raise ResumeError(f"Resume file {path} has {shown} (supported: {supported}).")
    if info.st_size > max_bytes:
        raise ResumeError(
            f"Resume file {path} is {info.st_size:,} bytes, "
            f"over the {max_bytes:,}-byte limit (RESUME_MAX_BYTES)."
        )
    return FORMATS[suffix]


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ResumeError(f"Resume file {path} cannot be read ({_reason(exc)}).") from exc
    if not data:
        raise ResumeError(f"Resume file {path} is empty (0 bytes).")
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return _shorten(first_line.rstrip("."), 160)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResumeError(
            f"Resume file {path} is not valid UTF-8 text (byte 0x{data[exc.start]:02x} "
            f"at offset {exc.start}); save it with UTF-8 encoding."
        ) from exc


def _parse_structured(path: Path, source: str, fmt: str) -> Mapping[str, object]:
    import yaml  # only JSON Resume files need it: loaded when first needed

    try:
        document: object = json.loads(source) if fmt == "json" else yaml.safe_load(source)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ResumeError(f"Resume file {path} is not valid JSON ({where}: {exc.msg}).") from exc
    except yaml.YAMLError as exc:
        raise ResumeError(f"Resume file {path} is not valid YAML ({_yaml_problem(exc)}).") from exc
    if not isinstance(document, dict):
        kind = _KINDS.get(type(document), f"a {type(document).__name__}")
        raise ResumeError(
            f"Resume file {path} must hold a JSON Resume object at the top level, not {kind}."
        )
    return {str(key): value for key, value in document.items()}


def _yaml_problem(exc: "yaml.YAMLError") -> str:
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return _reason(exc)


@contextmanager
def _parsing(path: Path, kind: str) -> Iterator[None]:
    """Report any failure of a third-party parser as an unreadable file of `kind`."""
    try:
        yield
    except ResumeError:
        raise
    except Exception as exc:  # parsers of untrusted files raise almost anything
        raise ResumeError(f"Resume file {path} is not a readable {kind} ({_reason(exc)}).") from exc


def _extract_plain(path: Path, data: bytes) -> str:
    return _decode(path, data)


def _extract_pdf(path: Path, data: bytes) -> str:
    with _parsing(path, "PDF"):
        import pypdf

        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ResumeError(
                f"Resume file {path} is a password-protected PDF; remove the password first."
            )
        return "\n\n".join(page.extract_text() for page in reader.pages)


def _extract_docx(path: Path, data: bytes) -> str:
    with _parsing(path, "Word .docx document"):
        import docx
        from docx.text.paragraph import Paragraph

        document = docx.Document(io.BytesIO(data))
        blocks = [
            _paragraph_markdown(block) if isinstance(block, Paragraph) else _table_text(block)
            for block in document.iter_inner_content()
        ]
    return "\n\n".join(blocks)


def _paragraph_markdown(paragraph: "Paragraph") -> str:
    text = paragraph.text.strip()
    style = paragraph.style.name if paragraph.style is not None else None
    if not text or not style:
        return text
    if style == "Title":
        return f"# {text}"
    if match := re.fullmatch(r"Heading (\d)", style):
        return f"{'#' * min(int(match[1]), 6)} {text}"
    return f"- {text}" if style.startswith("List") else text


def _table_text(table: "Table") -> str:
    """Rows of short cells as `a | b`; layout tables with long cells as blocks."""
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = cell.text.strip()
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        multiline = any("\n" in cell for cell in cells)
        rows.append("\n\n".join(cells) if multiline else " | ".join(cells))
    return "\n".join(row for row in rows if row)


_EXTRACTORS: dict[str, Callable[[Path, bytes], str]] = {
    "markdown": _extract_plain,
    "text": _extract_plain,
    "pdf": _extract_pdf,
    "docx": _extract_docx,
}
_EMPTY_HINTS = {
    "markdown": "contains no text",
    "text": "contains no text",
    "json": "contains no resume content (basics, work and the other sections are all empty)",
    "yaml": "contains no resume content (basics, work and the other sections are all empty)",
    "pdf": "is empty after text extraction (a scanned PDF has no text layer; "
    "export it with text or use Markdown)",
    "docx": "contains no text in its paragraphs or tables",
}


def _plain(line: str) -> str:
    if match := _HEADING.match(line):
        line = match[2]
    return line.strip().strip("*_`").strip()


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    return (cut if 0 < len(cut) <= limit else text[:limit]).rstrip(" ,;:|\u00b7\u2013\u2014-")


def _owner_name(text: str) -> str:
    lines = text.split("\n")
    headings = (_plain(line) for line in lines if line.startswith("# "))
    others = (_plain(line) for line in lines)
    return _shorten(next((name for name in chain(headings, others) if name), ""), MAX_NAME_CHARS)


def _headline(text: str, name: str) -> str:
    """The first line after the name when it reads like a job title, else ""."""
    if not name:
        return ""
    lines = iter(text.split("\n"))
    for line in lines:
        if _shorten(_plain(line), MAX_NAME_CHARS) == name:
            break
    for line in lines:
        candidate = _plain(line)
        if not candidate or _UNDERLINE.match(line.strip()):
            continue
        words = candidate.lower().split()
        is_section = words[0].strip(":") in _SECTION_WORDS and (
            line.startswith("#") or len(words) <= 2
        )
        too_long = len(candidate) > MAX_HEADLINE_CHARS
        return "" if is_section or too_long or _CONTACT.search(candidate) else candidate
    return ""
