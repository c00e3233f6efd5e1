"""Write the Word and PDF resumes of the labelled question set (`recruiter_questions.yaml`).

    cd backend && uv run python -m tests.unit.data.resumes.make_resumes

The files are committed; run this again only after editing the content below. The Word
file uses real heading, list and table styles; the PDF is a plain two-page text layer in
Helvetica (WinAnsi), the way an exported resume reads once its layout is gone: bare section
titles, wrapped lines, bullets as characters.
"""

import textwrap
from pathlib import Path

import docx

from tests.support.pdf import text_pdf

HERE = Path(__file__).parent

JONAS_SECTIONS: list[tuple[str, list[object]]] = [
    (
        "Summary",
        [
            "Data analyst with 6 years of experience turning messy operational data into "
            "dashboards that managers actually read. I prefer hybrid work (2 days remote per "
            "week) and am open to relocation within Scandinavia.",
        ],
    ),
    (
        "Experience",
        [
            ("Senior Data Analyst — Fjord Shipping AS, Oslo", "January 2021 \u2013 present"),
            [
                "Lead a team of three analysts covering freight, fuel and port operations.",
                "Built the weekly freight dashboard in Power BI, used by 40 managers.",
                "Cut report preparation from two days to two hours with Python and pandas.",
            ],
            ("Data Analyst — Oslo Kommune, Oslo", "August 2018 \u2013 December 2020"),
            [
                "Cleaned and published 20 years of building-permit records as open data.",
                "Automated the monthly housing report that went to the city council.",
            ],
        ],
    ),
    (
        "Education",
        [
            ("Master of Statistics — University of Oslo", "2016 \u2013 2018"),
            ("Bachelor of Economics — Norwegian School of Economics, Bergen", "2013 \u2013 2016"),
        ],
    ),
    (
        "Skills",
        [
            [
                ["Tool", "Level", "Years"],
                ["SQL", "Expert", "6 years"],
                ["Python (pandas)", "Advanced", "5 years"],
                ["Power BI", "Advanced", "4 years"],
                ["R", "Intermediate", "3 years"],
            ]
        ],
    ),
    (
        "Languages",
        [[["Norwegian", "Native"], ["English", "Fluent"], ["Spanish", "Basic"]]],
    ),
    (
        "Certifications",
        [
            ["Microsoft Certified: Power BI Data Analyst Associate (2022)"],
            ["Tableau Desktop Specialist (2020)"],
        ],
    ),
    (
        "Availability",
        [
            "Notice period: one month.",
            "Norwegian citizen: no work permit needed anywhere in the EU/EEA.",
        ],
    ),
]

INES_LINES = """\
Ines Duarte
Senior Security Engineer
ines.duarte@example.pt | +351 912 345 678 | Lisbon, Portugal | linkedin.com/in/ines-duarte-example

SUMMARY
Security engineer with 8 years of experience in application security, cloud hardening and \
incident response for telecom and e-commerce companies. I work remote-first and travel to an \
office once a month when needed. Happy to relocate within the EU. Portuguese (EU) citizen: no \
sponsorship needed in the EU. Available from September 2025.

EXPERIENCE
Senior Security Engineer, Mareia Telecom, Lisbon (2021 - present)
• Led a red team of four that ran quarterly attack simulations against the mobile network core.
• Built the vulnerability management program for 300 internal services; median fix time fell \
from 45 to 9 days.
• Rolled out single sign-on with hardware keys for 2,500 employees.

Security Engineer, Lojinha Online, Porto (2017 - 2021)
• Ran the bug bounty program and triaged more than 600 reports.
• Added static analysis and dependency scanning to 120 repositories in GitLab CI.

EDUCATION
M.Sc. in Informatics Engineering, University of Porto (2015 - 2017)
B.Sc. in Computer Science, University of Coimbra (2012 - 2015)

CERTIFICATIONS
OSCP - Offensive Security Certified Professional (2019)
CISSP (2023)

SKILLS
Application security, threat modelling, penetration testing, AWS and GCP hardening, \
Kubernetes security, Python, Go, Burp Suite, Terraform

LANGUAGES
Portuguese (native), English (fluent), Spanish (professional working proficiency)
"""


def write_docx(path: Path) -> None:
    document = docx.Document()
    document.add_heading("Jonas Berg", level=0)
    document.add_paragraph("Senior Data Analyst")
    document.add_paragraph("jonas.berg@example.no · +47 912 34 567 · Oslo, Norway")
    for title, blocks in JONAS_SECTIONS:
        document.add_heading(title, level=1)
        for block in blocks:
            _add_block(document, block)
    document.save(str(path))


def _add_block(document: "docx.document.Document", block: object) -> None:
    """A string is a paragraph; a tuple an entry (heading, dates); a list bullets or a table."""
    if isinstance(block, str):
        document.add_paragraph(block)
    elif isinstance(block, tuple):
        document.add_heading(block[0], level=2)
        document.add_paragraph(block[1])
    elif isinstance(block, list) and block and isinstance(block[0], list):
        table = document.add_table(rows=len(block), cols=len(block[0]))
        for row, values in zip(table.rows, block, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    elif isinstance(block, list):
        for item in block:
            document.add_paragraph(str(item), style="List Bullet")


def write_pdf(path: Path, text: str, per_page: int = 44) -> None:
    lines: list[str] = []
    for line in text.split("\n"):
        indent = "  " if line[:1] == "•" else ""
        wrapped = textwrap.wrap(line, 92, subsequent_indent=indent, break_on_hyphens=False)
        lines.extend(wrapped or [""])
    pages = [lines[start : start + per_page] for start in range(0, len(lines), per_page)]
    path.write_bytes(text_pdf(pages))


if __name__ == "__main__":
    write_docx(HERE / "jonas_berg.docx")
    write_pdf(HERE / "ines_duarte.pdf", INES_LINES)
    print(f"wrote {HERE / 'jonas_berg.docx'} and {HERE / 'ines_duarte.pdf'}")
