"""The model provider: the OpenAI-compatible HTTP client, its SSE parsing, the chain of
fallback models and token counting.
"""
