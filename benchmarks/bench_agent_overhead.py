"""Harness overhead of the memalpha agent per chunk, outside the model call, one thread.

Run by hand (figures go into docs/performance.md):

    python benchmarks/bench_agent_overhead.py [--instances 64] [--repeat 3] [--tokenizer simple|PATH]

The agent steps `--instances` sessions through 25 chunks each with `observe_batch`, as the runner
does, on a reader that answers at once with canned responses: the tool-call mix of
`bench_tools.py` (about 8 calls per response), the same response to every session of a step. Chunks
are ~800 words. Time spent inside the reader is left out; the rest is split into building the
prompts (rendering plus token counting for the prompt cap), parsing the responses, executing the
calls, and the remainder (batching, stats, session bookkeeping), in wall-clock time, which is
what keeps a GPU waiting between steps; the CPU time of all threads is given too (a Rust tokenizer
counts a batch of prompts on several cores). Best of `--repeat`.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from bench_tools import RESPONSES_PER_INSTANCE, as_openai, as_qwen3, as_qwen_agent, sentence, write_responses

from benchmark.agents import InstanceInfo
from benchmark.readers import ReaderRequest, ReaderResponse
from reference_agent.agent import MemAlphaAgent
from tasks.tokenization import get_counter

CHUNK_SENTENCES = 40  # of 15-25 words: ~800 words, a typical chunk


class CannedReader:
    """Answers step k of every session with response k; counts its own CPU time."""

    def __init__(self, responses: Sequence[ReaderResponse]):
        self.responses = responses
        self.step = 0
        self.seconds = 0.0

    def describe(self) -> dict:
        return {"backend": "canned"}

    def generate(self, requests: Sequence[ReaderRequest], on_result=None) -> list[ReaderResponse]:
        start = time.perf_counter()
        response = self.responses[self.step % len(self.responses)]
        self.step += 1
        out = [response] * len(requests)
        if on_result is not None:
            for i, r in enumerate(out):
                on_result(i, r)
        self.seconds += time.perf_counter() - start
        return out


def timed(fn: Callable[..., Any], totals: dict[str, float], key: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


def one_run(responses: list[ReaderResponse], chunks: list[str], instances: int, options: dict[str, str]):
    """Seconds outside the reader: wall-clock total, CPU total (all threads), wall-clock per part."""
    reader = CannedReader(responses)
    agent = MemAlphaAgent(reader, **options)
    parts: dict[str, float] = defaultdict(float)
    agent.turn.requests = timed(agent.turn.requests, parts, "prompt")  # type: ignore[method-assign]
    agent.turn.calls = timed(agent.turn.calls, parts, "parse")  # type: ignore[method-assign]
    start, cpu_start = time.perf_counter(), time.process_time()
    sessions = [agent.new_session(InstanceInfo(f"i{n}", "bench", "bench", len(chunks))) for n in range(instances)]
    for session in sessions:
        session.env.execute_all = timed(session.env.execute_all, parts, "execute")  # type: ignore[method-assign]
    for step, chunk in enumerate(chunks):
        errors = agent.observe_batch(sessions, [chunk] * instances)
        assert not any(errors), errors
        if step == len(chunks) - 1:
            for session in sessions:
                session.memory()
                session.stats()
    total = time.perf_counter() - start - reader.seconds
    cpu = time.process_time() - cpu_start - reader.seconds  # the canned reader's own time is all CPU
    calls = sum(s.env.stats.calls for s in sessions)
    return total, cpu, dict(parts), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokenizer", default="simple", help="token counter, as the agent's `tokenizer` option")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counter = get_counter(args.tokenizer)
    rng = random.Random(args.seed)
    chunks = [" ".join(sentence(rng, 15, 25) for _ in range(CHUNK_SENTENCES)) for _ in range(RESPONSES_PER_INSTANCE)]
    scripted = write_responses(RESPONSES_PER_INSTANCE, args.seed, counter)
    malformed = [i % 20 == 13 for i in range(len(scripted))]
    text = {
        "qwen3": [as_qwen3(c, m) for c, m in zip(scripted, malformed, strict=True)],
        "qwen-agent": [as_qwen_agent(c, m) for c, m in zip(scripted, malformed, strict=True)],
    }
    server_calls = [
        [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in as_openai(calls, m)]
        for calls, m in zip(scripted, malformed, strict=True)
    ]
    cases = {
        "qwen3, server-parsed `tool_calls`": (
            [ReaderResponse.from_raw("", 0, 0, tool_calls=calls) for calls in server_calls],
            {"format": "qwen3"},
        ),
        "qwen3, `<tool_call>` text": ([ReaderResponse.from_raw(t, 0, 0) for t in text["qwen3"]], {"format": "qwen3"}),
        "qwen3, `<tool_call>` text, no prompt cap": (
            [ReaderResponse.from_raw(t, 0, 0) for t in text["qwen3"]],
            {"format": "qwen3", "max_prompt_tokens": "0"},
        ),
        "qwen-agent ✿ markers": (
            [ReaderResponse.from_raw(t, 0, 0) for t in text["qwen-agent"]],
            {"format": "qwen-agent"},
        ),
    }
    n_chunks = args.instances * len(chunks)
    print(
        f"{args.instances} instances x {len(chunks)} chunks of ~{CHUNK_SENTENCES * 20} words, counter "
        f"`{counter.describe()['name']}`, time per chunk outside the model call, best of "
        f"{args.repeat}; CPU cores available: {len(os.sched_getaffinity(0))}, load average "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| case | calls/chunk | prompt (µs) | parse (µs) | execute (µs) | other (µs) | total (µs/chunk) "
        "| CPU, all threads (µs/chunk) | chunks/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (responses, options) in cases.items():
        runs = [
            one_run(responses, chunks, args.instances, {"tokenizer": args.tokenizer, **options})
            for _ in range(args.repeat)
        ]
        total, cpu, parts, calls = min(runs, key=lambda r: r[0])
        micro = {k: 1e6 * v / n_chunks for k, v in parts.items()}
        other = 1e6 * total / n_chunks - sum(micro.values())
        print(
            f"| {name} | {calls / n_chunks:.1f} | {micro['prompt']:.0f} | {micro['parse']:.0f} | "
            f"{micro['execute']:.0f} | {other:.0f} | {1e6 * total / n_chunks:.0f} | {1e6 * cpu / n_chunks:.0f} | "
            f"{n_chunks / total:,.0f} |"
        )


if __name__ == "__main__":
    main()
