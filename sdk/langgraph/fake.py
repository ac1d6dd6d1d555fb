"""A deterministic chat model that reports token usage like a real provider.

For tests, examples and benchmarks of instrumented graphs: no network, no randomness,
and the same ``usage_metadata`` shapes providers return - on the whole message from
``invoke``, and spread over chunks (input tokens on the first, output tokens one per
chunk) from ``stream``, which LangChain merges into one total.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

_PIECE = re.compile(r"\s*\S+\s*|\s+")


def count_tokens(text: str) -> int:
    """Whitespace-separated words: a stand-in tokenizer that tests can predict."""
    return len(text.split())


class FakeChatModel(BaseChatModel):
    """Replies with ``reply(messages)`` (or the fixed ``text``); tokens are words."""

    model: str = "fake-chat"
    text: str = "ok"
    reply: Callable[[Sequence[BaseMessage]], str] | None = Field(default=None, exclude=True)
    cached_input_tokens: int = 0
    """Reported as ``input_token_details.cache_read`` (at most the input tokens)."""
    cache_write_tokens: int = 0
    """Reported as ``input_token_details.cache_creation`` (at most the input tokens not
    read from the cache)."""
    reasoning_tokens: int = 0
    """Generated on top of the reply's words and reported as
    ``output_token_details.reasoning`` (included in ``output_tokens``, as providers do)."""
    provider: str | None = "wdp-fake"
    """LangChain's ``ls_provider`` (``openai``, ``anthropic``, …) of the fake's calls;
    None: the calls name none."""
    reported_cost: float | None = None
    """A cost the "provider" reports, in ``response_metadata["cost"]`` as
    langchain-openrouter's ``ChatOpenRouter`` does."""
    report_usage: bool = True
    """False: no ``usage_metadata`` at all, like models that report no token counts."""

    @property
    def _llm_type(self) -> str:
        return "wdp-fake-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = self.model
        if self.provider is None:
            params.pop("ls_provider", None)
        else:
            params["ls_provider"] = self.provider
        return params

    def _answer(self, messages: Sequence[BaseMessage]) -> tuple[str, int]:
        text = self.reply(messages) if self.reply is not None else self.text
        tokens_in = sum(count_tokens(str(m.content)) for m in messages)
        return text, tokens_in

    def _usage(self, tokens_in: int, tokens_out: int) -> dict[str, Any] | None:
        """The whole call's ``usage_metadata``; ``tokens_out`` counts the reply's words."""
        if not self.report_usage:
            return None
        tokens_out += self.reasoning_tokens
        usage: dict[str, Any] = {
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }
        cached = min(self.cached_input_tokens, tokens_in)
        details: dict[str, int] = {}
        if self.cached_input_tokens and tokens_in:
            details["cache_read"] = cached
        if self.cache_write_tokens and tokens_in:
            details["cache_creation"] = min(self.cache_write_tokens, tokens_in - cached)
        if details:
            usage["input_token_details"] = details
        if self.reasoning_tokens:
            usage["output_token_details"] = {"reasoning": self.reasoning_tokens}
        return usage

    def _metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"model_name": self.model}
        if self.reported_cost is not None:
            metadata["cost"] = self.reported_cost
        return metadata

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text, tokens_in = self._answer(messages)
        message = AIMessage(
            content=text,
            usage_metadata=self._usage(tokens_in, count_tokens(text)),
            response_metadata=self._metadata(),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text, tokens_in = self._answer(messages)
        # One chunk per word with the whitespace after it, so the streamed text joins
        # back to exactly what invoke() returns (newlines included).
        pieces = _PIECE.findall(text) or [text]
        # The whole call's usage, spread as providers stream it: the input (and its cache
        # details) on the first chunk, output tokens one per word, the reasoning tokens
        # and the reported cost with the last.
        whole = self._usage(tokens_in, count_tokens(text))
        for i, piece in enumerate(pieces):
            first, last = i == 0, i == len(pieces) - 1
            usage = None
            if whole is not None:
                out = count_tokens(piece) + (self.reasoning_tokens if last else 0)
                usage = {
                    "input_tokens": tokens_in if first else 0,
                    "output_tokens": out,
                    "total_tokens": (tokens_in if first else 0) + out,
                }
                if first and "input_token_details" in whole:
                    usage["input_token_details"] = whole["input_token_details"]
                if last and "output_token_details" in whole:
                    usage["output_token_details"] = whole["output_token_details"]
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece,
                    usage_metadata=usage,
                    response_metadata=self._metadata() if last else {},
                )
            )
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
