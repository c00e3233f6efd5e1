"""The model's tools within one turn: offer them, run what it calls, stream its follow-up.

A reply that calls tools is not shown: its calls are checked against each tool's
argument model, run, and their results sent back in a second request, whose text
streams to the visitor as part of the same answer (the same frames, the same `done`).
Unknown tools, arguments that are not JSON or do not validate, and tools that fail
are answered with an error result the model can read; the turn carries on. After
`MAX_TOOL_ROUNDS` rounds the model is asked once more with `tool_choice: none`, so a
turn costs at most three requests. The tokens of each round that called tools go into
the caller's `rounds` as soon as it ends, so they count toward the budgets even when a
later round fails or the visitor stops the answer.
"""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError

from app.core.errors import AppError
from app.core.logger import get_logger
from app.llm.chain import ModelChain
from app.llm.client import ChatMessage, Completion, StreamItem, TokenUsage
from app.llm.pacing import Pace
from app.llm.tokens import TokenCounter
from app.llm.tool_calls import ToolCall, ToolOffer

logger = get_logger(__name__)

MAX_TOOL_ROUNDS = 2
MAX_CALLS_PER_ROUND = 4


class GapRecorder(Protocol):
    """Notes a question the resume could not answer; logs a failure instead of raising."""

    async def record_gap(self, question: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: its OpenAI definition, the model that validates its arguments, and what
    it does with them (given the conversation), returning a sentence for the model."""

    name: str
    description: str
    parameters: dict[str, Any]
    arguments: type[BaseModel]
    run: Callable[[uuid.UUID, Any], Awaitable[str]]

    def definition(self) -> dict[str, Any]:
        function = {"name": self.name, "description": self.description}
        return {"type": "function", "function": function | {"parameters": self.parameters}}


class ToolBox:
    def __init__(self, tools: Sequence[Tool]) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self.definitions = [tool.definition() for tool in tools]

    async def call(self, call: ToolCall, conversation_id: uuid.UUID) -> str:
        """The call's result as JSON text: `{"ok": true, "result": ...}` or an error."""
        tool = self._tools.get(call.name)
        if tool is None:
            return _error(f"There is no tool named {call.name!r}.")
        try:
            arguments = tool.arguments.model_validate_json(call.arguments or "{}")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            return _error(f"Invalid arguments ({problems}).")
        try:
            # Shielded: a visitor who stops the answer must not lose what they just gave.
            result = await asyncio.shield(tool.run(conversation_id, arguments))
        except AppError as exc:
            logger.warning("tool %s failed: %s", call.name, exc.code)
            return _error(exc.message)
        logger.info("tool %s ran", call.name)
        return json.dumps({"ok": True, "result": result})


def _called(call: ToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments}
    return {"id": call.id, "type": "function", "function": function}


def _error(message: str) -> str:
    return json.dumps({"ok": False, "error": message})


class ToolLoop:
    """`stream` is `ModelChain.stream` with tools: text, then the last round's `Completion`."""

    def __init__(self, chain: ModelChain, toolbox: ToolBox, counter: TokenCounter) -> None:
        self._chain = chain
        self._toolbox = toolbox
        self._counter = counter

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        conversation_id: uuid.UUID,
        rounds: list[TokenUsage],
        pace: Pace | None = None,
    ) -> AsyncGenerator[StreamItem]:
        """The turn's text, then the last round's `Completion` (its own tokens only: the
        earlier rounds' are in `rounds`)."""
        request = list(messages)
        ends_in_text = False  # the turn's text so far ends in something other than a space
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            offer = ToolOffer(
                self._toolbox.definitions, "none" if round_ == MAX_TOOL_ROUNDS else "auto"
            )
            parts: list[str] = []  # this round's text (joined once: an answer is many tokens)
            completion = None
            async with contextlib.aclosing(self._chain.stream(request, offer, pace)) as stream:
                async for item in stream:
                    if isinstance(item, Completion):
                        completion = item
                        continue
                    if not parts and ends_in_text:
                        yield "\n\n"  # this round's text follows an earlier round's
                    parts.append(item)
                    yield item
            text = "".join(parts)
            if parts:
                ends_in_text = bool(text) and not text[-1].isspace()
            assert completion is not None, "a stream always ends with a Completion"
            if not completion.tool_calls or round_ == MAX_TOOL_ROUNDS:
                if round_ and completion.usage is None:  # estimated with the tool messages
                    usage = self._estimate(request, text, completion)
                    completion = replace(completion, usage=usage)
                yield replace(completion, tool_calls=()) if completion.tool_calls else completion
                return
            rounds.append(completion.usage or self._estimate(request, text, completion))
            request += await self._run(completion.tool_calls, text, conversation_id)

    async def _run(
        self, calls: Sequence[ToolCall], text: str, conversation_id: uuid.UUID
    ) -> list[dict[str, Any]]:
        """The assistant's tool-call message and one result message per call."""
        asked = {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [_called(call) for call in calls],
        }
        results = []
        for index, call in enumerate(calls):
            if index < MAX_CALLS_PER_ROUND:
                content = await self._toolbox.call(call, conversation_id)
            else:
                content = _error(f"At most {MAX_CALLS_PER_ROUND} tool calls at once.")
            results.append({"role": "tool", "tool_call_id": call.id, "content": content})
        return [asked, *results]

    def _estimate(
        self, request: Sequence[ChatMessage], text: str, completion: Completion
    ) -> TokenUsage:
        """Our count of one round, for a provider that reported no usage."""
        prompt = self._counter.count(orjson.dumps([request, self._toolbox.definitions]).decode())
        called = "".join(call.name + call.arguments for call in completion.tool_calls)
        return TokenUsage(prompt, self._counter.count(text + called))
