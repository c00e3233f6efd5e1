import json
from pathlib import Path

import pytest

from app.core.config import DEFAULT_RESUME
from app.resume.excerpts import MAX_SECTION_CHARS, ExcerptIndex, Passage
from app.resume.loader import Resume, load_resume

LIMIT = 5_000_000
OFFLINE = (
    "The assistant is offline right now, so here are the parts of Maya Lindqvist's resume "
    "that best match your question:"
)
OVERVIEW = (
    "The assistant is offline right now, and no part of Maya Lindqvist's resume matches that "
    "question directly, so here is how it introduces them:"
)
NO_MATCH = (
    "The assistant is offline right now, and no part of Maya Lindqvist's resume matches that "
    "question. Try asking about experience, skills, education or languages."
)
QUESTIONS = [
    "What languages does she speak?",
    "Where did she study?",
    "Does she know Kubernetes?",
    "What did she do at Nordpay?",
    "Where does she work?",
    "Has she led a team?",
    "Tell me about her open source projects",
    "Is she certified on AWS?",
    "How can I contact Maya?",
    "What are her hobbies?",
    "Kafka Python Go PostgreSQL latency",
    "mentoring",
]
PLAIN_RESUME = """Jonas Berg
Data Analyst

Experienced analyst who turns messy spreadsheets into dashboards that managers read.
Based in Oslo; happy to relocate.

Analyst, Fjord Shipping (2019 - present)
\u2022 Built the weekly freight dashboard in Power BI used by 40 managers.
\u2022 Cut report preparation from two days to two hours with Python and pandas.

Intern, Oslo Kommune (2018)
\u2022 Cleaned 20 years of permit records.

Master of Statistics, University of Oslo, 2018.

Norwegian (native), English (fluent), Spanish (basic).
"""


@pytest.fixture(scope="module")
def resume() -> Resume:
    return load_resume(DEFAULT_RESUME, LIMIT)


@pytest.fixture(scope="module")
def index(resume: Resume) -> ExcerptIndex:
    return ExcerptIndex.build(resume)


def _section(resume: Resume, title: str) -> str:
    """The body of the sample's `## title` section, as it stands in the resume."""
    return resume.text.split(f"## {title}\n\n", 1)[1].split("\n\n## ", 1)[0]


def _is_verbatim(passage: Passage, text: str) -> bool:
    """The passage is resume text, or an entry's heading lines and one of its bullets."""
    if passage.text in text:
        return True
    lines = passage.text.split("\n")
    return any(
        "\n".join(lines[:cut]) in text and "\n".join(lines[cut:]) in text
        for cut in range(1, len(lines))
    )


def _load(tmp_path: Path, name: str, content: str) -> Resume:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return load_resume(path, LIMIT)


def test_languages_question_gets_the_whole_languages_section_first(
    index: ExcerptIndex, resume: Resume
) -> None:
    passages = index.search("What languages does she speak?")

    assert passages[0].section == "Languages"
    assert passages[0].text == _section(resume, "Languages")
    for language in ("Swedish", "English", "German", "Finnish"):
        assert f"- **{language}:**" in passages[0].text
    answer = index.answer("What languages does she speak?")
    assert answer.startswith(f"{OFFLINE}\n\n**Languages**\n\n{_section(resume, 'Languages')}")


@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("Where did she study?", "Education"),
        ("education", "Education"),
        ("Which DEGREES does she hold?", "Education"),
        ("SKILLS", "Skills"),
        ("Which certifications does she hold?", "Certifications"),
        ("projects", "Selected projects"),
        ("What are her hobbies?", "Interests"),
        ("How can I contact her?", "Maya Lindqvist"),
    ],
)
def test_a_question_naming_a_section_ranks_that_section_first(
    index: ExcerptIndex, resume: Resume, question: str, section: str
) -> None:
    best = index.search(question)[0]

    assert best.section == section
    if section != "Maya Lindqvist":
        assert best.text == _section(resume, section)


@pytest.mark.parametrize("word", ["Kubernetes", "Terraform", "TimescaleDB", "Grafana"])
def test_a_skill_finds_every_passage_that_mentions_it(index: ExcerptIndex, word: str) -> None:
    passages = index.search(f"Does she know {word}?", limit=10)

    assert passages
    assert all(word in passage.text for passage in passages if passage.section != "Skills")
    assert word in passages[0].text


def test_word_forms_match_through_stemming(index: ExcerptIndex) -> None:
    mentored = index.search("Who has she mentored?", limit=10)
    spoken = index.search("Spoken tongues?")

    assert mentored
    assert all("mentor" in passage.text.lower() for passage in mentored)
    assert spoken[0].section == "Languages"


def test_a_bullet_of_a_long_section_reads_with_its_job(index: ExcerptIndex) -> None:
    head = "### Staff Software Engineer — Nordpay AB, Stockholm\n*March 2021 \u2013 present*\n"

    passages = index.search("What did she do at Nordpay?")
    answer = index.answer("What did she do at Nordpay?")

    assert len(passages) == 3
    assert all(p.section == "Experience" and p.text.startswith(head + "- ") for p in passages)
    assert answer.count("Nordpay AB") == 1
    assert answer.count("**Experience**") == 1
    assert "cut p99 authorisation latency" in index.search("p99 latency")[0].text


def test_passages_are_ranked_best_first_and_limited(index: ExcerptIndex) -> None:
    passages = index.search("Python Go Kafka PostgreSQL", limit=5)

    assert len(passages) == 5
    assert all(p.score > 0 for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert len(index.search("Python", limit=1)) == 1
    assert index.search("Python", limit=0) == []


@pytest.mark.parametrize(
    "question",
    ["xyzzy plugh", "", "   ", "What is the?", "??!", "Maya Lindqvist", "What does she do?"],
)
def test_a_general_question_gets_the_resume_introduction(
    index: ExcerptIndex, resume: Resume, question: str
) -> None:
    answer = index.answer(question)
    assert index.search(question) == []
    assert answer.startswith(OVERVIEW + "\n\n**Summary**\n\n")
    summary = answer.split("**Summary**\n\n", 1)[1]
    assert summary
    assert summary in resume.text


def test_an_empty_index_gets_the_no_match_sentence(tmp_path: Path) -> None:
    index = ExcerptIndex.build(_load(tmp_path, "resume.md", "# Maya Lindqvist\n"))
    assert index.answer("anything?").startswith("The assistant is offline right now, and no part")


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_hold_only_resume_text_after_the_offline_sentence(
    index: ExcerptIndex, resume: Resume, question: str
) -> None:
    passages = index.search(question)
    answer = index.answer(question)

    assert passages
    assert all(_is_verbatim(passage, resume.text) for passage in passages)
    assert answer.startswith(OFFLINE + "\n\n")
    labels = {f"**{passage.section}**" for passage in passages}
    resume_lines = set(resume.text.split("\n"))
    body = answer.removeprefix(OFFLINE).split("\n")
    assert all(line in resume_lines or line in labels for line in body if line)


def test_without_an_owner_name_the_reply_names_the_resume(resume: Resume) -> None:
    index = ExcerptIndex.build(Resume(resume.text, "", "", resume.source, "markdown"))

    assert index.answer("languages").startswith(
        "The assistant is offline right now, so here are the parts of the resume "
        "that best match your question:\n\n**Languages**"
    )
    assert index.answer("xyzzy").startswith("The assistant is offline right now, and no part")


def test_a_resume_without_headings_answers_from_its_paragraphs(tmp_path: Path) -> None:
    resume = _load(tmp_path, "resume.txt", PLAIN_RESUME)
    index = ExcerptIndex.build(resume)

    python = index.search("Has he used Python?")
    statistics = index.search("Where did he study statistics?")

    assert python[0] == Passage(
        "",
        "Analyst, Fjord Shipping (2019 - present)\n"
        "\u2022 Cut report preparation from two days to two hours with Python and pandas.",
        python[0].score,
    )
    assert statistics[0].text == "Master of Statistics, University of Oslo, 2018."
    assert index.answer("Where did he study statistics?") == (
        "The assistant is offline right now, so here are the parts of Jonas Berg's resume that "
        "best match your question:\n\nMaster of Statistics, University of Oslo, 2018."
    )
    assert all(_is_verbatim(p, resume.text) for q in QUESTIONS for p in index.search(q))


def test_bare_section_titles_in_plain_text_become_sections(tmp_path: Path) -> None:
    text = PLAIN_RESUME.replace("Master of", "EDUCATION\nMaster of").replace(
        "Norwegian (native)", "Languages:\nNorwegian (native)"
    )
    index = ExcerptIndex.build(_load(tmp_path, "resume.txt", text))

    languages = index.search("What languages does he speak?")[0]

    assert languages.section == "Languages"
    assert languages.text == "Norwegian (native), English (fluent), Spanish (basic)."
    assert index.search("Where did he study?")[0].section == "EDUCATION"


def test_a_long_paragraph_is_split_into_verbatim_passages(tmp_path: Path) -> None:
    lines = [f"Line {n} describes project number {n} built with tool{n}." for n in range(60)]
    resume = _load(tmp_path, "resume.txt", "Jonas Berg\n\n" + "\n".join(lines))
    index = ExcerptIndex.build(resume)

    passages = index.search("tool7 tool42 project", limit=50)

    assert {"Line 7 " in p.text or "Line 42 " in p.text for p in passages[:2]} == {True}
    assert all(len(p.text) <= MAX_SECTION_CHARS and p.text in resume.text for p in passages)


def test_a_json_resume_finds_its_languages_section(tmp_path: Path) -> None:
    document = {
        "basics": {"name": "Ada Okafor", "label": "Principal Data Engineer"},
        "work": [
            {
                "name": "Riverbank Analytics",
                "position": "Lead Data Engineer",
                "startDate": "2019-04-01",
                "highlights": ["Cut nightly load time from 6 hours to 40 minutes"],
            }
        ],
        "skills": [{"name": "Data", "keywords": ["Spark", "dbt", "Airflow"]}],
        "languages": [
            {"language": "English", "fluency": "Native speaker"},
            {"language": "Yoruba", "fluency": "Conversational"},
        ],
    }
    index = ExcerptIndex.build(_load(tmp_path, "resume.json", json.dumps(document)))

    languages = index.search("Which languages does Ada speak?")[0]

    assert languages == Passage(
        "Languages",
        "- **English**: Native speaker\n- **Yoruba**: Conversational",
        languages.score,
    )
    assert index.search("Airflow")[0].section == "Skills"
    assert index.search("Where has she worked?")[0].section == "Work experience"


@pytest.mark.parametrize("text", ["## Skills\n\n## Languages", "- a\n- the", "x"])
def test_a_resume_without_words_to_index_matches_nothing(tmp_path: Path, text: str) -> None:
    index = ExcerptIndex.build(Resume(text, "", "", tmp_path, "markdown"))

    assert index.search("skills the x") == []


def test_building_and_searching_print_no_progress(
    resume: Resume, capsys: pytest.CaptureFixture[str]
) -> None:
    index = ExcerptIndex.build(resume)
    index.answer("What languages does she speak?")

    out, err = capsys.readouterr()
    assert out == ""
    assert not any(mark in err for mark in ("%|", "it/s", "Split strings", "Building index"))


def test_entries_under_a_single_section_heading_stay_in_that_section(tmp_path: Path) -> None:
    names = ["Alder", "Birch", "Cedar", "Elm", "Hazel", "Larch", "Maple", "Rowan", "Willow"]
    jobs = [
        f"### Engineer \u2014 {name} AB\n\n- Shipped the {name} app in Rust.\n- Cut build times."
        for name in names
    ]
    text = "# Jonas Berg\n\n## Experience\n\n" + "\n\n".join(jobs)
    index = ExcerptIndex.build(_load(tmp_path, "resume.md", text))

    passages = index.search("What did he do at Hazel?")

    assert len(passages) == 2
    assert passages[0].section == "Experience"
    assert passages[0].text == "### Engineer \u2014 Hazel AB\n- Shipped the Hazel app in Rust."
