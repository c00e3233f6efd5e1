"""The primary model, then LLM_FALLBACK_MODELS, for answers that fail before they start.

With OpenRouter the whole list goes in one request (its `models` routing parameter)
and OpenRouter falls back itself, including when a prompt exceeds a model's context
window. With any other OpenAI-compatible provider the chain tries each model in turn.
A model is only abandoned before its first token: text the visitor saw is never redone.
"""

import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace

from app.core.errors import LLMRejectedError, LLMTimeoutError, LLMUnavailableError
from app.core.logger import get_logger
from app.llm.client import ChatMessage, Completion, LLMClient, StreamItem
from app.llm.pacing import Pace
from app.llm.tool_calls import ToolOffer

logger = get_logger(__name__)


class ModelChain:
    def __init__(
        self, llm: LLMClient, primary: str, fallbacks: Sequence[str], *, native_routing: bool
    ) -> None:
        self._llm = llm
        self.models = [primary, *(model for model in fallbacks if model != primary)]
        self._native_routing = native_routing

    @property
    def primary(self) -> str:
        return self.models[0]

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: ToolOffer | None = None,
        pace: Pace | None = None,
    ) -> AsyncGenerator[StreamItem]:
        if self._native_routing and len(self.models) > 1:
            async with contextlib.aclosing(
                self._llm.stream_chat(
                    messages, self.primary, route=self.models, tools=tools, pace=pace
                )
            ) as stream:
                async for item in stream:
                    yield item
            return
        for index, model in enumerate(self.models):
            started = False
            try:
                answer = self._llm.stream_chat(messages, model, tools=tools, pace=pace)
                async with contextlib.aclosing(answer) as stream:
                    async for item in stream:
                        started = started or isinstance(item, str)
                        if isinstance(item, Completion) and item.model is None:
                            item = replace(item, model=model)  # the provider named none
                        yield item
                return
            except (LLMUnavailableError, LLMTimeoutError) as error:
                last = index == len(self.models) - 1
                if started or last or isinstance(error, LLMRejectedError):
                    raise
                logger.warning(
                    "model %s failed before answering (%s); trying %s",
                    model,
                    error.code,
                    self.models[index + 1],
                )
