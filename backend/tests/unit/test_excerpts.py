import asyncio
import json
import re
from pathlib import Path

import pytest

from app.core.config import DEFAULT_RESUME
from app.resume.excerpt_index import ExcerptIndex
from app.resume.excerpts import Excerpts
from app.resume.loader import Resume, load_resume
from app.resume.passages import sentences, units_of

LIMIT = 5_000_000
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
    "Is she open to remote work?",
    "What's her current role?",
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


def _load(tmp_path: Path, name: str, content: str) -> Resume:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return load_resume(path, LIMIT)


def _flat(text: str) -> str:
    """Text with Markdown emphasis dropped and every run of whitespace one space."""
    return " ".join(text.replace("*", "").split())


def _quoted_lines(answer: str) -> list[str]:
    """What an answer quotes: its lines without labels and list markers."""
    lines: list[str] = []
    for line in answer.split("\n"):
        line = re.sub(r"^(- )?(\*\*[^*]+:\*\* ?)?", "", line)
        lines.extend(part for part in line.split(" \u00b7 ") if part)
    return lines


def test_a_languages_question_lists_the_languages_section_and_nothing_else(
    index: ExcerptIndex,
) -> None:
    answer = index.answer("What languages does she speak?")

    assert answer.matched
    assert answer.topic == "languages"
    assert answer.text == (
        "**Languages:**\n\n- **Swedish:** native\n"
        "- **English:** fluent (C2; daily working language since 2014)\n"
        "- **German:** intermediate (B1; lived in Berlin for three years)\n"
        "- **Finnish:** basic (A2)"
    )


@pytest.mark.parametrize(
    ("question", "quoted"),
    [
        ("Is she open to remote work?", "Stockholm, Sweden (open to remote)"),
        ("What's her current role?", "Staff Software Engineer — Nordpay AB, Stockholm"),
        ("How many years of experience does she have?", "11 years of experience"),
        ("Has she managed a team?", "Lead a team of 6 engineers"),
        ("Is she certified on AWS?", "AWS Certified Solutions Architect"),
        ("What's her email?", "maya.lindqvist@example.com"),
    ],
)
def test_a_recruiter_question_gets_the_line_that_answers_it_alone(
    index: ExcerptIndex, question: str, quoted: str
) -> None:
    answer = index.answer(question)

    assert answer.matched
    assert quoted in answer.text
    assert len(answer.text) <= 300, answer.text
    assert "Trail running" not in answer.text
    assert "ledgerlint" not in answer.text


def test_the_current_job_is_its_heading_with_its_dates(index: ExcerptIndex) -> None:
    answer = index.answer("Where does Maya work at the moment?")

    assert answer.text == (
        "**Experience:** Staff Software Engineer — Nordpay AB, Stockholm"
        " \u00b7 March 2021 \u2013 present"
    )


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("What are her salary expectations?", "salary expectations"),
        ("Would she need visa sponsorship?", "visas, sponsorship or the right to work"),
        ("What's her notice period?", "a notice period or start date"),
        ("Would she relocate?", "relocation"),
    ],
)
def test_a_topic_the_resume_is_silent_on_is_said_to_be_missing(
    index: ExcerptIndex, question: str, topic: str
) -> None:
    answer = index.answer(question)

    assert not answer.matched
    assert answer.text == (
        f"Maya Lindqvist's resume doesn't say anything about {topic}. "
        "It's best to ask Maya directly (maya.lindqvist@example.com)."
    )


def test_personal_questions_are_not_answered_and_not_sent_on(index: ExcerptIndex) -> None:
    answer = index.answer("How old is she?")

    assert not answer.matched
    assert answer.text == (
        "Maya Lindqvist's resume doesn't say anything about personal details like that."
    )


def test_a_name_the_resume_never_mentions_is_said_to_be_missing(index: ExcerptIndex) -> None:
    google = index.answer("Has she worked with Google?")
    mixed = index.answer("Does she know Kubernetes and Rust?")

    assert not google.matched
    assert google.text == "Maya Lindqvist's resume doesn't mention Google."
    assert mixed.matched
    assert "Kubernetes, Terraform" in mixed.text
    assert mixed.text.endswith("\n\nMaya Lindqvist's resume doesn't mention Rust.")


@pytest.mark.parametrize("word", ["Kubernetes", "Terraform", "TimescaleDB", "Grafana"])
def test_a_skill_finds_the_lines_that_mention_it(index: ExcerptIndex, word: str) -> None:
    passages = index.search(f"Does she know {word}?", limit=10)

    assert passages
    assert word in passages[0].text
    assert all(word in f"{p.head} {p.text}" for p in passages if p.section != "Skills")


def test_word_forms_match_through_stemming(index: ExcerptIndex) -> None:
    mentored = index.search("Who has she mentored?", limit=10)
    spoken = index.search("Spoken tongues?")

    assert mentored
    assert all("mentor" in passage.text.lower() for passage in mentored)
    assert spoken[0].section == "Languages"


def test_a_bullet_reads_under_its_job_shown_once(index: ExcerptIndex) -> None:
    passages = index.search("What did she do at Nordpay?")
    answer = index.answer("What did she do at Nordpay?").text

    head = "Staff Software Engineer — Nordpay AB, Stockholm \u00b7 March 2021 \u2013 present"
    assert all(p.section == "Experience" and p.head == head for p in passages if p.head)
    assert answer.count("Nordpay AB") == 1
    assert answer.count("**Experience:**") == 1
    assert answer.count("\n- ") == 3
    assert "cut p99 authorisation latency" in index.search("p99 latency")[0].text


def test_passages_are_ranked_best_first_and_limited(index: ExcerptIndex) -> None:
    passages = index.search("Python Go Kafka PostgreSQL", limit=5)

    assert len(passages) == 5
    assert all(p.score > 0 for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert len(index.search("Python", limit=1)) == 1
    assert index.search("Python", limit=0) == []


@pytest.mark.parametrize("question", ["What does she do?", "Who is Maya?", "Tell me about her"])
def test_a_general_question_gets_the_first_sentences_of_the_summary(
    index: ExcerptIndex, question: str
) -> None:
    answer = index.answer(question)

    assert (answer.matched, answer.topic) == (True, "overview")
    assert answer.text == (
        "**Summary:** Backend engineer with 11 years of experience building reliable, "
        "high-traffic systems in Python and Go. I design services that stay fast under load, "
        "lead small teams through large migrations, and care about observability, clear APIs "
        "and mentoring."
    )


@pytest.mark.parametrize(
    ("question", "intro"),
    [
        ("xyzzy plugh", "Here is Maya's own summary:"),
        ("What does she think of xyzzy?", "Here is how Maya describes her work:"),
        ("??!", "Here is Maya's own summary:"),
    ],
)
def test_a_question_nothing_matches_says_so_in_the_visitors_words(
    index: ExcerptIndex, question: str, intro: str
) -> None:
    answer = index.answer(question)

    assert not answer.matched
    assert answer.text.startswith(f"Maya Lindqvist's resume doesn't mention that. {intro}\n\n")
    assert "**Summary:** Backend engineer with 11 years" in answer.text
    assert "introduces them" not in answer.text


def test_an_empty_index_gets_the_no_match_sentence(tmp_path: Path) -> None:
    index = ExcerptIndex.build(_load(tmp_path, "resume.md", "# Maya Lindqvist\n"))

    answer = index.answer("anything?")

    assert not answer.matched
    assert answer.text == (
        "Maya Lindqvist's resume doesn't mention that. "
        "Try asking about experience, skills, education or languages."
    )


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_quote_only_resume_text(index: ExcerptIndex, resume: Resume, question: str) -> None:
    answer = index.answer(question)

    assert answer.matched
    flat = _flat(resume.text)
    assert all(_flat(line) in flat for line in _quoted_lines(answer.text)), answer.text
    parts = [part for p in index.search(question) for part in p.text.split(" \u00b7 ")]
    assert all(_flat(part) in flat for part in parts)


def test_without_an_owner_name_the_reply_names_the_resume(resume: Resume) -> None:
    index = ExcerptIndex.build(Resume(resume.text, "", "", resume.source, "markdown"))

    assert index.answer("languages").text.startswith("**Languages:**")
    assert index.answer("xyzzy").text.startswith("The resume doesn't mention that.")


def test_a_resume_without_headings_answers_from_its_lines(tmp_path: Path) -> None:
    resume = _load(tmp_path, "resume.txt", PLAIN_RESUME)
    index = ExcerptIndex.build(resume)

    python = index.search("Has he used Python?")
    statistics = index.answer("Where did he study statistics?")

    assert python[0].head == "Analyst, Fjord Shipping (2019 - present)"
    assert python[0].text == (
        "Cut report preparation from two days to two hours with Python and pandas."
    )
    assert statistics.text == ("Master of Statistics, University of Oslo, 2018.")
    assert index.answer("Would he relocate?").text == ("Based in Oslo; happy to relocate.")


def test_bare_section_titles_in_plain_text_become_sections(tmp_path: Path) -> None:
    text = PLAIN_RESUME.replace("Master of", "EDUCATION\nMaster of").replace(
        "Norwegian (native)", "Languages:\nNorwegian (native)"
    )
    index = ExcerptIndex.build(_load(tmp_path, "resume.txt", text))

    languages = index.answer("What languages does he speak?")

    assert languages.text == (
        "**Languages:** Norwegian (native), English (fluent), Spanish (basic)."
    )
    assert "**Education:** Master of Statistics" in index.answer("Where did he study?").text


def test_soft_wrapped_pdf_lines_are_joined_and_split_into_sentences() -> None:
    text = (
        "Ines Duarte\nSecurity Engineer\nines@example.pt | Lisbon |\nlinkedin.com/in/ines\n"
        "SUMMARY\nSecurity engineer with 8 years of experience in application security and\n"
        "incident response. I work remote-first. Portuguese (EU) citizen: no sponsorship\n"
        "needed. M.Sc. holder since 2017.\nEDUCATION\nM.Sc. in Informatics, Porto (2015 - 2017)\n"
        "B.Sc. in Computer Science, Coimbra (2012 - 2015)"
    )

    units = units_of(text, markdown=False)

    assert [u.text for u in units if u.section == "SUMMARY"] == [
        "Security engineer with 8 years of experience in application security and incident "
        "response.",
        "I work remote-first.",
        "Portuguese (EU) citizen: no sponsorship needed.",
        "M.Sc. holder since 2017.",
    ]
    assert [u.text for u in units if u.section == ""] == [
        "Ines Duarte",
        "Security Engineer",
        "ines@example.pt | Lisbon | linkedin.com/in/ines",
    ]
    assert [(u.kind, u.text) for u in units if u.section == "EDUCATION"] == [
        ("line", "M.Sc. in Informatics, Porto (2015 - 2017)"),
        ("line", "B.Sc. in Computer Science, Coimbra (2012 - 2015)"),
    ]


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        ("Built it. Ran it.", ["Built it.", "Ran it."]),
        ("Python and Go. I design.", ["Python and Go.", "I design."]),
        ("Holds an M.Sc. in CS. Lives in Oslo.", ["Holds an M.Sc. in CS.", "Lives in Oslo."]),
        ("Tools, e.g. Spark. And dbt.", ["Tools, e.g. Spark.", "And dbt."]),
        ("Met Dr. Smith in 2019.", ["Met Dr. Smith in 2019."]),
    ],
)
def test_sentences_split_at_sentence_ends_not_abbreviations(
    paragraph: str, expected: list[str]
) -> None:
    assert sentences(paragraph) == expected


def test_a_date_line_joins_its_entry_heading_and_table_rows_are_lines(tmp_path: Path) -> None:
    text = (
        "# Jonas Berg\n\n# Experience\n\n## Analyst — Fjord\n\nJanuary 2021 \u2013 present\n\n"
        "- Built dashboards.\n\n# Skills\n\n| Tool | Level |\n|---|---|\n| SQL | Expert |\n"
    )
    index = ExcerptIndex.build(_load(tmp_path, "resume.md", text))

    assert index.answer("What's his current job?").text == (
        "**Experience:** Analyst — Fjord \u00b7 January 2021 \u2013 present"
    )
    assert index.answer("How good is his SQL?").text == ("**Skills:** SQL | Expert")


def test_a_json_resume_answers_from_its_sections(tmp_path: Path) -> None:
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

    assert index.answer("Which languages does Ada speak?").text == (
        "**Languages:**\n\n- **English**: Native speaker\n- **Yoruba**: Conversational"
    )
    assert index.search("Airflow")[0].section == "Skills"
    assert "Riverbank Analytics" in index.answer("Who does she work for now?").text


@pytest.mark.parametrize("text", ["## Skills\n\n## Languages", "- a\n- the", "x"])
def test_a_resume_without_words_to_index_matches_nothing(tmp_path: Path, text: str) -> None:
    index = ExcerptIndex.build(Resume(text, "", "", tmp_path, "markdown"))

    assert index.search("skills the x") == []
    assert not index.answer("skills the x").matched


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

    assert passages[0].section == "Experience"
    assert (passages[0].head, passages[0].text) == (
        "Engineer \u2014 Hazel AB",
        "Shipped the Hazel app in Rust.",
    )
    assert index.answer("What did he do at Hazel?").text == (
        "**Experience:** Engineer \u2014 Hazel AB\n\n"
        "- Shipped the Hazel app in Rust.\n- Cut build times."
    )


def test_skills_list_the_skills_section_and_earlier_jobs_the_job_before(
    index: ExcerptIndex,
) -> None:
    skills = index.answer("What are her main technical skills?")
    before = index.answer("Where did she work before Nordpay?")

    assert skills.topic == "skills"
    assert skills.text.count("\n- ") == 5
    assert "**Infrastructure:** AWS, Kubernetes" in skills.text
    assert before.text == (
        "**Experience:** Senior Software Engineer — Trailhead Logistics, Gothenburg"
        " \u00b7 August 2017 \u2013 February 2021"
    )


async def test_excerpts_build_their_index_once_on_first_use() -> None:
    excerpts = Excerpts(load_resume(DEFAULT_RESUME, LIMIT))
    first, second = await asyncio.gather(excerpts.index(), excerpts.index())
    assert first is second
    assert first.answer("Where did she study?").matched
