"""Prompt caching: what a request carries so that the provider can reuse the resume's tokens.

The system prompt (rules, then the whole resume) is the same bytes in every request and
comes first, so providers that cache prefixes by themselves (OpenAI, DeepSeek, Gemini)
read it from their cache. Model families that cache only at explicit breakpoints
(Anthropic's, Alibaba's Qwen) get `cache_control` on that system block. OpenRouter also
gets a per-conversation `session_id` as its sticky-routing key, so every turn of a
conversation goes to the provider that holds its cache. `LLM_PROMPT_CACHE=off` sends
neither. The key is a hash of the session id: the id itself lets its holder read the
conversation, so it never leaves the server.
"""

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from app.core.logger import session_id_var

# Model names (as OpenRouter spells them) whose providers cache only at breakpoints.
BREAKPOINT_FAMILIES = ("anthropic/", "qwen/")
_EPHEMERAL = {"type": "ephemeral"}
NO_SESSION = "-"  # what `session_id_var` holds outside a conversation


def needs_breakpoint(model: str) -> bool:
    name = model.lower()
    return name.startswith(BREAKPOINT_FAMILIES) or "claude" in name


class PromptCache:
    def __init__(self, mode: Literal["auto", "off"], *, openrouter: bool) -> None:
        self._on = mode == "auto"
        self._openrouter = openrouter

    def apply(self, payload: dict[str, Any], models: Sequence[str]) -> dict[str, Any]:
        """`payload` (a chat-completions body) with caching hints for `models`."""
        if not self._on:
            return payload
        if any(needs_breakpoint(model) for model in models):
            payload["messages"] = _mark_system(payload["messages"])
        session = session_id_var.get()  # set by the socket or REST route serving the turn
        if self._openrouter and session != NO_SESSION:
            payload["session_id"] = sticky_key(session)
        return payload


def sticky_key(session_id: str) -> str:
    return hashlib.sha256(f"resume-chat:{session_id}".encode()).hexdigest()[:32]


def _mark_system(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The system message as one text part with a cache breakpoint; the rest unchanged."""
    marked: list[Mapping[str, Any]] = []
    for message in messages:
        if message.get("role") == "system" and isinstance(message.get("content"), str):
            part = {"type": "text", "text": message["content"], "cache_control": _EPHEMERAL}
            message = {**message, "content": [part]}
        marked.append(message)
    return marked
