"""CPU cost per question of the scoring pipeline (retrieval + prompt + metric), ours vs the original's.

Run by hand (figures go into docs/performance.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_scoring.py [--sizes 100 1000 10000]

Memories are real SQuAD sentences split evenly between semantic and episodic entries; each instance
has 100 real SQuAD questions. "Ours" (the scorer's own code path) builds each instance's two indexes
once and amortises them over its questions, with the retrieval of a profile: `v1` retrieves on the
question, `memalpha-paper` on the ICL query prompt + the question (the longest query the original
sent). "Original" rebuilds a rank-bm25 BM25Okapi index per question and memory type and takes the
top 20 by argsort, with the same long query, as the Mem-alpha memory server did. Reader time is
excluded (no model).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from benchmark import metrics
from benchmark.memory import Memory, MemoryEntry
from benchmark.profiles import get_profile
from benchmark.prompting import ReaderPrompt
from benchmark.retrieval import MemoryIndex, tokenize
from benchmark.scoring import _token_counts
from tasks.catalog import LABEL_PROMPT
from tasks.chunking import split_sentences
from tasks.sources.squad import read_squad_file
from tasks.tokenization import SimpleCounter

QUESTIONS = 100
TOP_K = 20
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


def ours(memory: Memory, questions: list[str], profile: str) -> float:
    """Seconds for all questions, index build included, with a profile's idf floor and query string."""
    counter, rule = SimpleCounter(), get_profile(profile).retrieval
    prompt = ReaderPrompt.for_profile(get_profile(profile))
    start = time.perf_counter()
    queries = [rule.query_text(q, prompt.render_user(q, LABEL_PROMPT, "icl_banking77"), "") for q in questions]
    sem_ranks = MemoryIndex([e.content for e in memory.semantic], epsilon=rule.epsilon).search_many(queries, TOP_K)
    epi_ranks = MemoryIndex([e.content for e in memory.episodic], epsilon=rule.epsilon).search_many(queries, TOP_K)
    sizes = (
        _token_counts(counter, memory.semantic, sem_ranks),
        _token_counts(counter, memory.episodic, epi_ranks),
    )
    for q, sem, epi in zip(questions, sem_ranks, epi_ranks, strict=True):
        built = prompt.build(memory, sem, epi, q, None, counter=counter, budget=30_000, entry_tokens=sizes)
        metrics.substring_em(built.messages[1][1], ["answer"])
    return time.perf_counter() - start


def original(memory: Memory, questions: list[str]) -> float:
    start = time.perf_counter()
    for q in questions:
        query = tokenize(f"{LABEL_PROMPT}\n\n{q}")
        lines = []
        for entries in (memory.semantic, memory.episodic):
            bm25 = BM25Okapi([tokenize(e.content) for e in entries], k1=1.5, b=0.75)
            top = np.argsort(bm25.get_scores(query))[::-1][:TOP_K]
            lines += [f"{i + 1}. {entries[j].content}" for i, j in enumerate(top)]
        prompt = memory.core + "\n" + "\n".join(lines) + "\n" + q
        metrics.substring_em(prompt, ["answer"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("MEMALPHA_RAW_DIR", "../shared/data/raw")))
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--original-questions",
        type=int,
        default=10,
        help="questions timed for the (slow) original approach; per-question cost is flat",
    )
    args = parser.parse_args()
    sentences, questions = corpus(args.raw_dir)
    print(f"CPU cores available: {len(os.sched_getaffinity(0))}; {QUESTIONS} questions per instance; top-k {TOP_K}")
    print(
        "| memory entries | ours, v1: ms/question | ours, memalpha-paper: ms/question "
        "| original: ms/question | speed-up (paper query) |"
    )
    print("|---|---|---|---|---|")
    for n in args.sizes:
        memory = make_memory(sentences, n)
        qs = questions[:QUESTIONS]
        mine = {
            p: statistics.median(ours(memory, qs, p) / len(qs) for _ in range(args.repeat)) * 1000 for p in PROFILES
        }
        few = qs[: args.original_questions]
        theirs = statistics.median(original(memory, few) / len(few) for _ in range(args.repeat)) * 1000
        v1, paper = mine["v1"], mine["memalpha-paper"]
        print(f"| {n:,} | {v1:.3f} | {paper:.3f} | {theirs:.2f} | {theirs / paper:,.0f}× |")


if __name__ == "__main__":
    main()
