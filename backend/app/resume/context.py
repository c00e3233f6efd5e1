"""Everything derived from the loaded resume, built once and swapped whole on reload."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.chat.leak_guard import REPLACEMENT, LeakPatterns, process_canary
from app.chat.prompts import MESSAGE_OVERHEAD, instructions, system_prompt
from app.core.errors import ResumeError
from app.llm.tokens import TokenCounter
from app.resume.excerpts import Excerpts
from app.resume.loader import Resume


@dataclass(frozen=True, slots=True)
class ResumeContext:
    resume: Resume
    system_prompt: str
    system_tokens: int
    excerpts: Excerpts | None  # built on first use
    leak_patterns: LeakPatterns  # the prompt's canary and instructions, kept out of answers
    leak_replacement: str  # what a visitor reads instead of a leak
    tools: Sequence[dict[str, Any]] = ()

    @classmethod
    def build(
        cls,
        resume: Resume,
        counter: TokenCounter,
        *,
        excerpts: bool,
        tools: Sequence[dict[str, Any]] = (),
        canary: str | None = None,
    ) -> "ResumeContext":
        """With `tools` (OpenAI `tools` entries) the prompt says when to call them, and
        `system_tokens` counts their definitions too, since every request carries them.
        `canary` defaults to this process's own (`process_canary`)."""
        canary = process_canary() if canary is None else canary
        prompt = system_prompt(resume.owner_name, resume.text, canary, tools=bool(tools))
        tool_tokens = counter.count(json.dumps(list(tools))) if tools else 0
        return cls(
            resume=resume,
            system_prompt=prompt,
            system_tokens=counter.count(prompt) + MESSAGE_OVERHEAD + tool_tokens,
            excerpts=Excerpts(resume) if excerpts else None,
            tools=tools,
            leak_patterns=LeakPatterns(canary, instructions(prompt)),
            leak_replacement=REPLACEMENT.format(name=resume.owner_name or "the resume's owner"),
        )

    def check_room(
        self, room: int, *, context_tokens: int, answer_tokens: int, question_tokens: int
    ) -> None:
        """`room` is what is left of the context window for a longest question's history."""
        if room < 0:
            raise ResumeError(
                f"The system prompt and resume take {self.system_tokens} tokens; with "
                f"LLM_MAX_TOKENS={answer_tokens} and MAX_MESSAGE_TOKENS={question_tokens} "
                f"they are {-room} tokens over LLM_CONTEXT_TOKENS={context_tokens}. "
                "Raise LLM_CONTEXT_TOKENS or shorten the resume."
            )
