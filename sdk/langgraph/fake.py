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

    @property
    def _llm_type(self) -> str:
        return "wdp-fake-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = self.model
        params["ls_provider"] = "wdp-fake"
        return params

    def _answer(self, messages: Sequence[BaseMessage]) -> tuple[str, int]:
        text = self.reply(messages) if self.reply is not None else self.text
        tokens_in = sum(count_tokens(str(m.content)) for m in messages)
        return text, tokens_in

    def _usage(self, tokens_in: int, tokens_out: int) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }
        if self.cached_input_tokens and tokens_in:
            usage["input_token_details"] = {"cache_read": min(self.cached_input_tokens, tokens_in)}
        return usage

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
            response_metadata={"model_name": self.model},
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
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            usage = self._usage(tokens_in if i == 0 else 0, count_tokens(piece))
            if i > 0:
                usage.pop("input_token_details", None)
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece,
                    usage_metadata=usage,
                    response_metadata={"model_name": self.model} if last else {},
                )
            )
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
