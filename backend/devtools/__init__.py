"""Tools for development and benchmarks: the stand-in LLM provider and a loopback server.

`python -m devtools.fake_llm` serves an OpenAI-compatible stand-in on 127.0.0.1.
"""
