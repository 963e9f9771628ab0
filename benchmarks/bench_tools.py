"""Tool-call throughput of the reference agent: parsing a response and executing its calls, one thread.

Run by hand (figures go into docs/performance.md):

    python benchmarks/bench_tools.py [--responses 10000] [--repeat 5] [--tokenizer simple|PATH]

The mix is what a memorising model writes per chunk: about 8 calls per response (3 semantic and 2
dated episodic inserts of 15-35 words, a core rewrite of ~120 words, an update and a delete of
recent entries every few responses), with an exact duplicate, an unknown id and a malformed call
now and then. Instances of 25 responses each start from an empty memory. Responses are written once
in each format, then replayed on fresh environments under the timer. Only core updates count tokens
(with `--tokenizer`); everything else is parsing and dict work.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable

from reference_agent.environment import MemoryEnvironment
from reference_agent.toolcalls import (
    FN_ARGS,
    FN_NAME,
    ToolCall,
    from_openai_tool_calls,
    parse_qwen3,
    parse_qwen_agent,
)
from tasks.tokenization import TokenCounter, get_counter

WORDS = (
    "river city museum bridge train station market harbour festival library garden tower castle "
    "mountain valley forest lake village road square church school theatre park palace"
).split()
RESPONSES_PER_INSTANCE = 25


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def one_response(rng: random.Random, env: MemoryEnvironment, step: int) -> list[tuple[str, dict]]:
    """The (tool, arguments) of one response; `env` is the memory so far, to pick real ids."""
    insert, update, delete = "new_memory_insert", "memory_update", "memory_delete"
    calls: list[tuple[str, dict]] = []
    for _ in range(3):
        calls.append((insert, {"memory_type": "semantic_memory", "content": sentence(rng, 15, 35)}))
    for i in range(2):
        stamp = f"2024-{1 + step % 12:02d}-{1 + i + step % 27:02d}"
        calls.append((insert, {"memory_type": "episodic_memory", "content": sentence(rng, 15, 35), "timestamp": stamp}))
    calls.append((update, {"memory_type": "core_memory", "new_content": sentence(rng, 100, 140)}))
    semantic, _ = env.recent("semantic", 5)
    if step % 2 and semantic:
        calls.append(
            (
                update,
                {
                    "memory_type": "semantic_memory",
                    "memory_id": rng.choice(semantic).id,
                    "new_content": sentence(rng, 15, 35),
                },
            )
        )
    episodic, _ = env.recent("episodic", 5)
    if step % 4 == 3 and episodic:
        calls.append((delete, {"memory_type": "episodic_memory", "memory_id": episodic[0].id}))
    if step % 10 == 5 and semantic:  # an exact duplicate: skipped
        calls.append((insert, {"memory_type": "semantic_memory", "content": semantic[-1].content}))
    if step % 20 == 7:  # an unknown id: an error
        calls.append((delete, {"memory_type": "semantic_memory", "memory_id": "s9999"}))
    return calls


def write_responses(n: int, seed: int, counter: TokenCounter) -> list[list[tuple[str, dict]]]:
    rng = random.Random(seed)
    responses, env = [], MemoryEnvironment(counter)
    for i in range(n):
        if i % RESPONSES_PER_INSTANCE == 0:
            env = MemoryEnvironment(counter)
        calls = one_response(rng, env, i)
        env.execute_all(ToolCall(name, args, "") for name, args in calls)
        responses.append(calls)
    return responses


def as_qwen3(calls: list[tuple[str, dict]], malformed: bool) -> str:
    blocks = [f"<tool_call>\n{json.dumps({'name': n, 'arguments': a})}\n</tool_call>" for n, a in calls]
    if malformed:
        blocks.append("<tool_call>\n{'name': 'new_memory_insert', 'arguments': {}}\n</tool_call>")
    return "I will store the new facts and events.\n" + "\n".join(blocks)


def as_qwen_agent(calls: list[tuple[str, dict]], malformed: bool) -> str:
    lines = [f"{FN_NAME}: {n}\n{FN_ARGS}: {json.dumps(a, ensure_ascii=False)}" for n, a in calls]
    if malformed:
        lines.append(f"{FN_NAME}: new_memory_insert\n{FN_ARGS}: {{'memory_type': 'semantic_memory'}}")
    return "The chunk describes a trip.\n" + "\n".join(lines)


def as_openai(calls: list[tuple[str, dict]], malformed: bool) -> list[dict]:
    out = [
        {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for i, (n, a) in enumerate(calls)
    ]
    if malformed:
        out.append({"id": "bad", "type": "function", "function": {"name": "memory_delete", "arguments": "{"}})
    return out


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The least CPU time of `repeat` runs: this process's own seconds, steady on a busy machine."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


class ToolStatsTotal:
    """Outcome counts summed over instances, to show the mix really has skips and errors."""

    def __init__(self) -> None:
        self.counts = {"ok": 0, "skipped": 0, "failed": 0}

    def add(self, env: MemoryEnvironment) -> None:
        for key in self.counts:
            self.counts[key] += getattr(env.stats, key)


def measure(
    payloads: list, parse: Callable[[object], list[ToolCall]], counter: TokenCounter, repeat: int
) -> tuple[int, dict[str, float], dict[str, int]]:
    parsed = [parse(p) for p in payloads]
    n_calls = sum(len(c) for c in parsed)

    def execute_all(parse_too: bool) -> ToolStatsTotal:
        total = ToolStatsTotal()
        env = MemoryEnvironment(counter)
        for i, payload in enumerate(payloads):
            if i % RESPONSES_PER_INSTANCE == 0:
                total.add(env)
                env = MemoryEnvironment(counter)
            env.execute_all(parse(payload) if parse_too else parsed[i])
        total.add(env)
        return total

    seconds = {
        "parse": best_of(lambda: [parse(p) for p in payloads], repeat),
        "execute": best_of(lambda: execute_all(False), repeat),
        "parse+execute": best_of(lambda: execute_all(True), repeat),
    }
    return n_calls, seconds, execute_all(True).counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--tokenizer",
        default="simple",
        help="token counter for the core cap, as `memalpha tasks build --tokenizer`",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counter = get_counter(args.tokenizer)
    responses = write_responses(args.responses, args.seed, counter)
    malformed = [i % 20 == 13 for i in range(len(responses))]
    paths = {
        "qwen3 `<tool_call>` text": (
            [as_qwen3(c, m) for c, m in zip(responses, malformed, strict=True)],
            lambda t: parse_qwen3(t).calls,
        ),
        "qwen-agent ✿ markers": (
            [as_qwen_agent(c, m) for c, m in zip(responses, malformed, strict=True)],
            lambda t: parse_qwen_agent(t).calls,
        ),
        "OpenAI `tool_calls`": (
            [as_openai(c, m) for c, m in zip(responses, malformed, strict=True)],
            from_openai_tool_calls,
        ),
    }
    print(
        f"{args.responses} responses, {RESPONSES_PER_INSTANCE} per instance, core counter "
        f"`{counter.describe()['name']}`, one thread, CPU time, best of {args.repeat}; "
        f"CPU cores available: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| format | calls | ok / skipped / failed | parse (calls/s) | execute (calls/s) | parse + execute (calls/s) |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for name, (payloads, parse) in paths.items():
        n_calls, seconds, counts = measure(payloads, parse, counter, args.repeat)
        rates = {k: n_calls / v for k, v in seconds.items()}
        print(
            f"| {name} | {n_calls} | {counts['ok']} / {counts['skipped']} / {counts['failed']} | "
            f"{rates['parse']:,.0f} | {rates['execute']:,.0f} | {rates['parse+execute']:,.0f} |"
        )


if __name__ == "__main__":
    main()
