"""Tool calls in the OpenAI `tools` format: what a request offers, what a streamed reply calls.

A streamed tool call arrives in pieces: each `delta.tool_calls` entry names its call's
`index`; the first piece carries the call's `id` and function `name`, and the JSON
`arguments` come split over any number of chunks. `ToolCallBuffer` puts them together
(some providers, MiniMax through NVIDIA NIM and Fireworks among them, repeat the `id`
and the whole `name` in every piece: these are kept once).

Some providers or models refuse requests that carry `tools` (a 400 or 404 whose message
mentions tools, as OpenRouter's "No endpoints found that support tool use"). `ToolSupport`
remembers such a model for the life of the process, so it is asked without them.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.logger import get_logger

logger = get_logger(__name__)

# Statuses with which providers refuse a request's `tools` (OpenRouter answers 404).
_REFUSING_STATUSES = (400, 404, 422)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it; not validated here


@dataclass(frozen=True, slots=True)
class ToolOffer:
    """The tools a request offers (OpenAI `tools` entries) and its `tool_choice`."""

    tools: Sequence[dict[str, Any]]
    choice: Literal["auto", "none"] = "auto"


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallBuffer:
    """The tool calls of one streamed reply, assembled from their deltas."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ToolCallBuffer) and self._calls == other._calls

    __hash__ = None  # type: ignore[assignment]  # mutable

    @staticmethod
    def well_formed(deltas: object) -> bool:
        """Whether `deltas` (a `delta.tool_calls` value) has the shape `add` takes."""
        if type(deltas) is not list:
            return False
        for delta in deltas:
            if type(delta) is not dict:
                return False
            function = delta.get("function")
            if not (_optional(delta.get("index"), int) and _optional(delta.get("id"), str)):
                return False
            if function is not None and not (
                type(function) is dict
                and _optional(function.get("name"), str)
                and _optional(function.get("arguments"), str)
            ):
                return False
        return True

    def add(self, deltas: list[dict[str, Any]]) -> None:
        """Take one chunk's `delta.tool_calls` (checked with `well_formed`)."""
        for position, delta in enumerate(deltas):
            index = delta.get("index")
            call = self._calls.setdefault(position if index is None else index, _PartialCall())
            call.id = call.id or delta.get("id") or ""
            function = delta.get("function") or {}
            name = function.get("name") or ""
            if name != call.name:  # some providers repeat the whole name in every chunk
                call.name += name
            if function.get("arguments"):
                call.arguments.append(function["arguments"])

    def calls(self) -> tuple[ToolCall, ...]:
        """The calls in index order; a call with no id gets one (`call_<index>`)."""
        return tuple(
            ToolCall(call.id or f"call_{index}", call.name, "".join(call.arguments))
            for index, call in sorted(self._calls.items())
        )


class ToolSupport:
    """Which models refused `tools` in this process; they are not offered tools again."""

    def __init__(self) -> None:
        self._refused: set[str] = set()

    def offer(self, payload: dict[str, Any], model: str, offer: ToolOffer | None) -> bool:
        """Add the offer's fields to `payload` unless `model` refused tools; True if added."""
        if offer is None or not offer.tools or model in self._refused:
            return False
        payload["tools"] = list(offer.tools)
        payload["tool_choice"] = offer.choice
        return True

    def refused(self, model: str, status: int, detail: str) -> bool:
        """Whether an error status means `model` refuses tools; if so, it is remembered."""
        if status not in _REFUSING_STATUSES or "tool" not in detail.lower():
            return False
        self._refused.add(model)
        logger.warning(
            "model %s refused tools (HTTP %d: %s); asking it again without them from now on",
            model,
            status,
            detail[:200],
        )
        return True


def without_tools(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in ("tools", "tool_choice")}


def _optional(value: object, kind: type) -> bool:
    return value is None or type(value) is kind
