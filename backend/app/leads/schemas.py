"""Wire models of leads and knowledge gaps, and the arguments of the model's tools."""

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # in a name: none at all (it goes in headers)
_CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _one_line(value: str) -> str:
    if _CONTROLS.search(value):
        raise ValueError("must be one line of text")
    return value


def _text(value: str) -> str:
    if _CONTROLS_BUT_LINES.search(value):
        raise ValueError("must not contain control characters")
    return value


Line = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_one_line),
]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(_text)
]
OptionalLine = Annotated[Line | None, BeforeValidator(_blank_is_none)]
OptionalText = Annotated[Text | None, BeforeValidator(_blank_is_none)]
Source = Literal["form", "model"]


class ContactForm(BaseModel):
    """`POST /api/sessions/{session_id}/contact`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "jane@acme.example",
                    "name": "Jane Doe",
                    "company": "Acme",
                    "message": "We have a staff engineer role you may like.",
                    "website": "",
                }
            ]
        },
    )

    email: EmailStr = Field(description="Checked with email-validator (form only, no DNS).")
    name: OptionalLine = None
    company: OptionalLine = None
    message: OptionalText = None
    website: str | None = Field(
        default=None,
        max_length=2000,
        description="A honeypot: people never see this field and leave it empty. When it is "
        "filled the answer looks the same (201 with an id) but nothing is stored.",
    )


class ContactCreated(BaseModel):
    id: uuid.UUID = Field(description="The lead's id.")


class LeadItem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8e6a52-5d0f-4a8e-9b8e-0c6f1f3d2a11",
                    "session_id": "5b1f4c3e-8d2a-4f6b-9c1d-2e3f4a5b6c7d",
                    "name": "Jane Doe",
                    "email": "jane@acme.example",
                    "company": "Acme",
                    "message": "We have a staff engineer role you may like.",
                    "source": "model",
                    "created_at": "2025-05-01T09:15:40Z",
                }
            ]
        }
    )

    id: uuid.UUID
    session_id: uuid.UUID = Field(description="The conversation the lead came from.")
    name: str | None
    email: str
    company: str | None
    message: str | None
    source: Source = Field(description="`form` (the contact form) or `model` (the chat's tool).")
    created_at: datetime


class LeadPage(BaseModel):
    items: list[LeadItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class GapItem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "Does she speak German?",
                    "count": 3,
                    "last_asked_at": "2025-05-01T09:15:40Z",
                }
            ]
        }
    )

    question: str = Field(description="As first asked (questions differing only in case, "
                          "spacing or punctuation count as one).")  # fmt: skip
    count: int
    last_asked_at: datetime


class GapList(BaseModel):
    items: list[GapItem]


class ContactArguments(BaseModel):
    """`record_contact`'s arguments, as the model sends them (unknown fields are ignored)."""

    name: Line
    email: EmailStr
    company: OptionalLine = None
    message: OptionalText = None


class QuestionArguments(BaseModel):
    question: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
        AfterValidator(_text),
    ]
