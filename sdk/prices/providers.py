"""Provider ids as the price data names them, from what instrumentation reports.

genai-prices' price rows carry its own provider ids (``google``, ``aws``, ``x-ai``);
LangChain's ``ls_provider`` and OpenTelemetry's ``gen_ai.provider.name`` /
``gen_ai.system`` spell some providers otherwise. One table for both, so the SDK's
handler and the OTLP ingestion price the same call at the same provider's price.
"""

from __future__ import annotations

__all__ = ["LANGCHAIN_PROVIDER_IDS", "OTEL_PROVIDER_IDS", "PROVIDER_IDS", "provider_id"]

MAX_PROVIDER = 200

# Spellings that differ from genai-prices' ids; any other value is kept (lower case).
# genai-prices' own provider matching maps LangChain's the same way
# (tests/unit/test_langgraph_usage.py checks it).
LANGCHAIN_PROVIDER_IDS = {
    "google_genai": "google",
    "google_vertexai": "google",
    "amazon_bedrock": "aws",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "xai": "x-ai",
    "together_ai": "together",
    "mistralai": "mistral",
}
# gen_ai.provider.name / gen_ai.system values (GenAI semantic conventions). Azure's
# OpenAI service is billed by Azure: "azure", where genai-prices' matching says openai.
OTEL_PROVIDER_IDS = {
    "aws.bedrock": "aws",
    "azure.ai.inference": "azure",
    "azure.ai.openai": "azure",
    "az.ai.inference": "azure",
    "az.ai.openai": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "ibm.watsonx.ai": "ibm",
}
PROVIDER_IDS = LANGCHAIN_PROVIDER_IDS | OTEL_PROVIDER_IDS


def provider_id(value: object) -> str | None:
    """``value`` as the price data's provider id; None for no (or a blank) provider."""
    if not isinstance(value, str) or not value.strip():
        return None
    key = value.strip().lower()
    return PROVIDER_IDS.get(key, key)[:MAX_PROVIDER]
