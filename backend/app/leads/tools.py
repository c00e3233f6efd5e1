"""The model's two tools, in the OpenAI `tools` format, bound to the lead service."""

from app.chat.tools import Tool
from app.leads.schemas import ContactArguments, QuestionArguments
from app.leads.service import LeadService

_TEXT = {"type": "string"}

RECORD_CONTACT = {
    "type": "object",
    "properties": {
        "name": _TEXT | {"description": "The visitor's name, as they wrote it."},
        "email": _TEXT | {"description": "The visitor's e-mail address, as they wrote it."},
        "company": _TEXT | {"description": "Their company or organisation, if they said."},
        "message": _TEXT | {"description": "What they want, in a sentence or two, if they said."},
    },
    "required": ["name", "email"],
    "additionalProperties": False,
}

RECORD_QUESTION = {
    "type": "object",
    "properties": {
        "question": _TEXT | {"description": "The visitor's question, in their words."},
    },
    "required": ["question"],
    "additionalProperties": False,
}


def lead_tools(leads: LeadService) -> list[Tool]:
    return [
        Tool(
            name="record_contact",
            description="Pass a visitor's contact details to the resume's owner, who will "
            "get in touch. Only with details the visitor wrote in this conversation.",
            parameters=RECORD_CONTACT,
            arguments=ContactArguments,
            run=leads.record_contact,
        ),
        Tool(
            name="record_unanswered_question",
            description="Note a question about the owner that the resume does not answer, "
            "so the owner can add the answer.",
            parameters=RECORD_QUESTION,
            arguments=QuestionArguments,
            run=leads.record_question,
        ),
    ]
