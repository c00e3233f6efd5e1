"""What a chat widget shows before the first question: who, a greeting, starter questions."""

import re

from app.resume.loader import Resume

# Section names (lower-case, as they appear in headings) and the question each suggests.
_STARTERS = (
    (("experience", "work"), "What has {first} worked on recently?"),
    (("skills", "technologies"), "What are {first}'s strongest skills?"),
    (("projects",), "Which projects is {first} most proud of?"),
    (("education",), "Where did {first} study?"),
    (("languages",), "Which languages does {first} speak?"),
    (("certifications", "certificates"), "What certifications does {first} hold?"),
)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def first_name(resume: Resume) -> str:
    return resume.owner_name.split()[0] if resume.owner_name.strip() else "the owner"


def greeting(resume: Resume, configured: str) -> str:
    if configured:
        return configured
    name = resume.owner_name or "this person"
    return (
        f"Hi! I'm {name}'s assistant. Ask me anything about "
        f"{first_name(resume)}'s experience, skills and projects."
    )


def starter_questions(resume: Resume, configured: list[str], limit: int = 4) -> list[str]:
    """The owner's own list, or questions for the sections this resume has."""
    if configured:
        return configured
    headings = " ".join(match.lower() for match in _HEADING.findall(resume.text))
    first = first_name(resume)
    found = [
        question.format(first=first)
        for names, question in _STARTERS
        if any(name in headings for name in names)
    ]
    return found[:limit] or [f"What does {first} do?"]
