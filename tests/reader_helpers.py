"""Requests and tool schemas the reader tests share."""

from __future__ import annotations

from benchmark.readers import ReaderRequest, SamplingParams

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "remember",
            "description": "Store one fact.",
            "parameters": {"type": "object", "properties": {"fact": {"type": "string"}}, "required": ["fact"]},
        },
    }
]


def ask(question: str, **params) -> ReaderRequest:
    """A system + user conversation asking `question`, with sampling settings `params`."""
    return ReaderRequest.chat(
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": question}],
        SamplingParams(**params),
    )
