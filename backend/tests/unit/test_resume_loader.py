import json
from pathlib import Path

import docx
import pypdf
import pytest

from app.core.config import DEFAULT_RESUME
from app.core.errors import ResumeError
from app.resume.loader import Resume, load_resume
from tests.support.pdf import text_pdf

LIMIT = 1_000_000

FULL_JSON_RESUME: dict[str, object] = {
    "$schema": "https://raw.githubusercontent.com/jsonresume/resume-schema/v1.0.0/schema.json",
    "basics": {
        "name": "Ada Okafor",
        "label": "Principal Data Engineer",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0000",
        "url": "https://ada.example.com",
        "summary": "Builds data platforms that analysts trust.",
        "location": {"city": "London", "countryCode": "GB", "region": "England"},
        "profiles": [
            {"network": "GitHub", "username": "ada-ok", "url": "https://github.com/ada-ok"}
        ],
    },
    "work": [
        {
            "name": "Riverbank Analytics",
            "position": "Lead Data Engineer",
            "startDate": "2019-04-01",
            "summary": "Owns the warehouse.",
            "highlights": ["Cut nightly load time from 6 hours to 40 minutes"],
        },
        {"name": "Foglight", "position": "Data Engineer", "startDate": "2015", "endDate": "2019"},
    ],
    "volunteer": [{"organization": "Code Club", "position": "Mentor", "startDate": "2017-09"}],
    "education": [
        {
            "institution": "University of Leeds",
            "area": "Mathematics",
            "studyType": "BSc",
            "endDate": "2014-06",
            "score": "First",
            "courses": ["Statistics", "Numerical Analysis"],
        }
    ],
    "awards": [{"title": "Data Hero", "date": "2021-11-02", "awarder": "DataConf"}],
    "certificates": [{"name": "Google Cloud Data Engineer", "issuer": "Google", "date": "2022"}],
    "publications": [{"name": "Lakehouses in Practice", "publisher": "O'Reilly Radar"}],
    "skills": [{"name": "Data", "level": "Master", "keywords": ["Spark", "dbt", "Airflow"]}],
    "languages": [
        {"language": "English", "fluency": "Native speaker"},
        {"language": "Yoruba", "fluency": "Conversational"},
    ],
    "interests": [{"name": "Chess", "keywords": ["endgames"]}],
    "references": [{"name": "Sam Lee", "reference": "Ada is the best engineer I have managed."}],
    "projects": [
        {
            "name": "quackpipe",
            "description": "A DuckDB ingestion tool.",
            "roles": ["Maintainer"],
            "keywords": ["DuckDB"],
        }
    ],
    "meta": {"version": "v1.0.0", "canonical": "https://example.com/resume.json"},
    "openSource": [{"project": "pandas", "contribution": "Parquet fixes"}],
}


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def _resume_error(path: Path, max_bytes: int = LIMIT) -> str:
    with pytest.raises(ResumeError) as info:
        load_resume(path, max_bytes)
    message = info.value.message
    assert str(path) in message
    assert "\n" not in message
    return message


def test_shipped_sample_resume_loads_with_name_headline_and_languages() -> None:
    resume = load_resume(DEFAULT_RESUME, LIMIT)

    assert resume.format == "markdown"
    assert resume.owner_name == "Maya Lindqvist"
    assert resume.headline.startswith("Senior Software Engineer")
    assert "## Languages" in resume.text
    assert "Swedish" in resume.text
    assert "fluent" in resume.text
    assert "## Experience" in resume.text


def test_markdown_is_normalised(tmp_path: Path) -> None:
    source = "# Jo Park  \r\nBackend Engineer\r\n\r\n\r\n\r\n## Summary\x07\rLikes \tGo.\n\n\n"
    resume = load_resume(_write(tmp_path, "cv.md", source), LIMIT)

    assert resume == Resume(
        text="# Jo Park\nBackend Engineer\n\n## Summary\nLikes \tGo.",
        owner_name="Jo Park",
        headline="Backend Engineer",
        source=tmp_path / "cv.md",
        format="markdown",
    )


def test_markdown_name_comes_from_first_h1_not_first_line(tmp_path: Path) -> None:
    source = "<!-- exported 2024 -->\n\n# **Lena Berg**\n\n*Engineering Manager*\n\n## Work\n"
    resume = load_resume(_write(tmp_path, "cv.markdown", source), LIMIT)

    assert (resume.owner_name, resume.headline) == ("Lena Berg", "Engineering Manager")


@pytest.mark.parametrize(
    "after_name",
    ["lena@example.com | Oslo", "https://github.com/lena", "## Experience", "+47 912 34 567"],
)
def test_headline_is_empty_when_name_is_followed_by_contact_or_section(
    tmp_path: Path, after_name: str
) -> None:
    path = _write(tmp_path, "cv.md", f"# Lena Berg\n\n{after_name}\n\nText.\n")

    assert load_resume(path, LIMIT).headline == ""


def test_text_resume_uses_first_line_as_name_and_caps_its_length(tmp_path: Path) -> None:
    long_line = "Alexandra " * 12
    resume = load_resume(_write(tmp_path, "cv.txt", f"\n\n{long_line}\nData Scientist\n"), LIMIT)

    assert resume.format == "text"
    assert 0 < len(resume.owner_name) <= 80
    assert resume.owner_name.startswith("Alexandra Alexandra")
    assert resume.headline == "Data Scientist"


def test_json_resume_is_rendered_as_readable_sections(tmp_path: Path) -> None:
    resume = load_resume(_write(tmp_path, "r.json", json.dumps(FULL_JSON_RESUME)), LIMIT)
    text = resume.text

    assert (resume.owner_name, resume.headline, resume.format) == (
        "Ada Okafor",
        "Principal Data Engineer",
        "json",
    )
    for heading in (
        "## Summary",
        "## Work experience",
        "## Volunteering",
        "## Projects",
        "## Education",
        "## Awards",
        "## Certificates",
        "## Publications",
        "## Skills",
        "## Languages",
        "## Interests",
        "## References",
        "## Open source",
    ):
        assert f"\n{heading}\n" in text
    assert "### Lead Data Engineer — Riverbank Analytics" in text
    assert "Apr 2019 \u2013 present" in text
    assert "- Cut nightly load time from 6 hours to 40 minutes" in text
    assert "### BSc in Mathematics — University of Leeds" in text
    assert "- **English**: Native speaker" in text
    assert "- **Yoruba**: Conversational" in text
    assert "- **Data** (Master): Spark, dbt, Airflow" in text
    assert "London, England, GB" in text
    assert "GitHub: ada-ok" in text
    assert "Project: pandas; Contribution: Parquet fixes" in text
    assert "canonical" not in text.lower()
    assert not set("{}[]\"'") & set(text.replace("O'Reilly", ""))


def test_json_resume_with_missing_and_odd_fields_still_loads(tmp_path: Path) -> None:
    document = {
        "basics": {"email": "x@example.com", "profiles": "none"},
        "work": [{"name": "Acme"}, "Freelance consulting", None],
        "languages": [{"language": "French"}, {"fluency": "Basic"}],
        "skills": "Python, SQL",
        "awards": [],
    }
    resume = load_resume(_write(tmp_path, "r.json", json.dumps(document)), LIMIT)

    assert "### Acme" in resume.text
    assert "- Freelance consulting" in resume.text
    assert "- **French**" in resume.text
    assert "- Python, SQL" in resume.text
    assert "## Awards" not in resume.text
    assert "None" not in resume.text
    assert resume.headline == ""


def test_yaml_resume_renders_dates_and_languages(tmp_path: Path) -> None:
    source = """\
basics:
  name: Kai Moana
  label: Site Reliability Engineer
work:
  - name: Tide
    position: SRE
    startDate: 2020-02-01
languages:
  - language: Māori
    fluency: Native
2024: an unquoted year as a key
"""
    resume = load_resume(_write(tmp_path, "r.yml", source), LIMIT)

    assert (resume.owner_name, resume.headline, resume.format) == (
        "Kai Moana",
        "Site Reliability Engineer",
        "yaml",
    )
    assert "### SRE — Tide\nFeb 2020 \u2013 present" in resume.text
    assert "## Languages\n\n- **Māori**: Native" in resume.text
    assert "## 2024\n\n- an unquoted year as a key" in resume.text


def test_self_referencing_yaml_does_not_hang(tmp_path: Path) -> None:
    source = "basics: {name: Loop}\nextra: &loop [a, *loop]\n"
    resume = load_resume(_write(tmp_path, "r.yaml", source), LIMIT)

    assert "## Extra\n\n- a" in resume.text


def test_docx_keeps_headings_paragraphs_lists_and_tables(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Noor Haddad", level=0)
    document.add_paragraph("Mobile Engineer")
    document.add_heading("Skills", level=1)
    document.add_paragraph("Kotlin and Swift", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Arabic", "Native"
    table.cell(1, 0).text, table.cell(1, 1).text = "French", "Fluent"
    path = tmp_path / "cv.docx"
    document.save(str(path))

    resume = load_resume(path, LIMIT)

    assert (resume.owner_name, resume.headline, resume.format) == (
        "Noor Haddad",
        "Mobile Engineer",
        "docx",
    )
    assert "# Skills\n\n- Kotlin and Swift" in resume.text
    assert "Arabic | Native\nFrench | Fluent" in resume.text


def test_pdf_text_layer_is_extracted(tmp_path: Path) -> None:
    pdf = text_pdf([["Ines Duarte", "Security Engineer", "Speaks Portuguese (native)"]])
    resume = load_resume(_write(tmp_path, "cv.pdf", pdf), LIMIT)

    assert (resume.owner_name, resume.headline, resume.format) == (
        "Ines Duarte",
        "Security Engineer",
        "pdf",
    )
    assert "Speaks Portuguese (native)" in resume.text


def test_missing_file_is_reported(tmp_path: Path) -> None:
    assert "does not exist" in _resume_error(tmp_path / "nope.md")


def test_directory_is_reported(tmp_path: Path) -> None:
    assert "is a directory" in _resume_error(tmp_path)


def test_unsupported_extension_lists_supported_ones(tmp_path: Path) -> None:
    message = _resume_error(_write(tmp_path, "cv.rtf", "{\\rtf1 Hello}"))

    assert "unsupported extension '.rtf'" in message
    for suffix in (".md", ".markdown", ".txt", ".json", ".yaml", ".yml", ".pdf", ".docx"):
        assert suffix in message


def test_password_protected_pdf_is_reported(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.encrypt("secret", algorithm="RC4-128")
    path = tmp_path / "cv.pdf"
    with path.open("wb") as out:
        writer.write(out)

    assert "is a password-protected PDF" in _resume_error(path)


def test_oversized_file_gives_both_sizes(tmp_path: Path) -> None:
    message = _resume_error(_write(tmp_path, "cv.md", "# A\n" + "x" * 2000), max_bytes=1500)

    assert "2,004 bytes" in message
    assert "1,500-byte limit" in message


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "cv.md", "# A\n")

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)

    assert "cannot be read (permission denied)" in _resume_error(path)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("cv.md", b"", "is empty (0 bytes)"),
        ("cv.txt", b"  \n\t\n\x00\n", "contains no text"),
        ("cv.md", b"# Ren\xe9 Roux\n", "not valid UTF-8 text (byte 0xe9 at offset 5)"),
        ("cv.json", b'{\n  "basics": {"name": "A",}\n}', "not valid JSON (line 2, column 25"),
        ("cv.json", b'[{"name": "A"}]', "JSON Resume object at the top level, not a list"),
        ("cv.json", b"{}", "contains no resume content"),
        ("cv.yaml", b"basics:\n  name: A\n label: B\n", "not valid YAML (line 3, column 2"),
        ("cv.yaml", b"just a sentence\n", "at the top level, not a string"),
        ("cv.pdf", b"%PDF-1.4\nthis is not really a pdf\n", "not a readable PDF"),
        ("cv.pdf", text_pdf([[]]), "empty after text extraction (a scanned PDF"),
        ("cv.docx", b"PK\x03\x04 broken zip", "not a readable Word .docx document"),
    ],
)
def test_bad_content_is_reported(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    message = _resume_error(_write(tmp_path, name, content))

    assert expected in message
    assert message.endswith(".")
