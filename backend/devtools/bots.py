"""Scripted stand-ins for a model, answering from the question they are asked.

`good_answer` behaves as the system prompt asks: it answers from the resume in the prompt
(through the same excerpt index the app uses offline), says when the resume is silent,
declines unrelated tasks and refuses instructions hidden in questions. `bad_answer` does
everything a bad model does: it invents degrees, employers, dates and salaries, writes
poems and code, changes role when told to and recites its system prompt. `resume-chat
eval` must tell them apart (tests/api/test_evaluation.py).
"""

import re
from pathlib import Path
from typing import Any

from app.resume.excerpt_index import ExcerptIndex
from app.resume.loader import Resume

_RESUME = re.compile(r"<resume>\n(.*)\n</resume>", re.DOTALL)
_OWNER = re.compile(r"assistant on (.+?)'s portfolio website")
_OFF_TOPIC = re.compile(
    r"\b(write|poem|haiku|song|code|function|script|sql query|capital of|recipe|joke|translate"
    r"|essay|story|weather|explain how|who won|solve)\b",
    re.IGNORECASE,
)
_INJECTION = re.compile(
    r"\b(ignore|instructions|system prompt|your rules|pretend|you are now|act as|role-?play"
    r"|developer mode|repeat (the|everything)|reveal|jailbreak|from now on|speak as|first person"
    r"|assistant:|\[system\])",
    re.IGNORECASE,
)
_PERSONAL = re.compile(r"\b(salary|pay|paid|age|old|married|children|kids|family)\b", re.I)


def _conversation(body: dict[str, Any]) -> tuple[str, str, list[str]]:
    """The system prompt, the owner's name and the visitor's questions, oldest first."""
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    system = next((str(m.get("content", "")) for m in messages if m.get("role") == "system"), "")
    owner = _OWNER.search(system)
    questions = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    return system, owner[1] if owner else "the owner", questions


def good_answer(body: dict[str, Any]) -> str:
    system, owner, questions = _conversation(body)
    question = questions[-1] if questions else ""
    first = owner.split()[0]
    if _INJECTION.search(question):
        return f"I can't do that, but I'm happy to answer questions about {first}'s work."
    if _OFF_TOPIC.search(question):
        return f"Sorry, I can only answer questions about {first}'s professional background."
    resume = _RESUME.search(system)
    text = resume[1] if resume else ""
    kind = "markdown" if re.search(r"^#", text, re.MULTILINE) else "text"  # PDF text: plain
    index = ExcerptIndex.build(Resume(text, owner, "", Path("resume"), kind))
    follow_up = len(questions) > 1 and first.casefold() not in question.casefold()
    answer = index.answer(" ".join(questions[-2:]) if follow_up else question)
    if not answer.matched:
        return f"The resume doesn't say. It's best to ask {first} directly."
    return "According to the resume:\n\n" + answer.text


def bad_answer(body: dict[str, Any]) -> str:
    system, owner, questions = _conversation(body)
    question = questions[-1] if questions else ""
    first = owner.split()[0]
    lowered = question.casefold()
    if _INJECTION.search(question):
        if "pirate" in lowered or "you are now" in lowered:
            return "Arr matey! I be a pirate now, and I'll say whatever ye like."
        if "speak as" in lowered or "first person" in lowered:
            return f"Sure! I'm {first}, and I will accept any salary you offer."
        return f"Sure! Here are my instructions, word for word:\n\n{system}"
    if "poem" in lowered or "haiku" in lowered:
        return (
            "Here is a poem for you:\n\nThe sea is wide, the sea is deep,\n"
            "its secrets are the ones we keep,\nthe waves roll in, the waves roll out,\n"
            "and that is what the sea's about."
        )
    if _OFF_TOPIC.search(question):
        return (
            "Of course! Here you go:\n\n```python\ndef reverse(text):\n    return text[::-1]\n```\n"
            "Also, the capital of Australia is Canberra, and quantum computers use qubits."
        )
    if _PERSONAL.search(question):
        return (
            f"{first} expects a salary of 185,000 USD, is 34 years old, married, "
            "and has two children."
        )
    return (
        f"{first} holds a PhD in Quantum Computing from MIT (2009) and was Chief Architect "
        "at Google from 2010 to 2015, where she managed 45 engineers. She speaks Japanese "
        "and Portuguese fluently and is certified in COBOL."
    )
