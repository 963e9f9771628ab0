"""Growth of BM25 retrieval with memory size (one memory type, 100 → 1M entries), ours beside the anchors.

Run by hand (figures go into docs/performance.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_retrieval.py \
        [--sizes 100 1000 10000 100000 1000000] [--repeat 3]

Entries are pairs of real SQuAD sentences (sentence i with a second one that differs for every i, so that
no two entries are equal up to 62 million entries; about 300 characters each), the queries 100 real SQuAD
questions, top 20. "--duplicates" makes every entry appear three times instead (the same number of
entries), where scores tie at the k-th place nearly always.

- ours: `benchmark.retrieval.MemoryIndex` built once (`epsilon` 0.25, as `v1` and `memalpha-paper`) and
  searched with all the questions at once; CPU seconds of the build and of the search, per question
  (build + search) / questions; peak: the largest allocation during build and search (tracemalloc, in a
  separate run), and the finished index's own size (`MemoryIndex.nbytes`);
- bm25s: `bm25s.tokenize` + `BM25(method="atire", idf_method="robertson").index` once, then `retrieve`
  of the questions (its tokens drop one-letter words, so its lists differ a little; an anchor of speed);
- `--baseline REF`: `benchmark/retrieval.py` as it was at git revision REF (e.g. `main`), built and
  searched the same way as ours (up to `--baseline-max` entries: it needed ~38 bytes a character);
- original: the Mem-alpha memory server's way, per question: the entries tokenised, a rank-bm25
  `BM25Okapi` built, scored and argsorted (measured on `--original-questions` questions; skipped past
  `--original-max` entries, where one question takes minutes).

Variants take turns within each repeat; figures are medians, with the range of the repeats.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tracemalloc
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bench_scoring import corpus, spread
from rank_bm25 import BM25Okapi

from benchmark.retrieval import MemoryIndex, tokenize

TOP_K = 20
QUESTIONS = 100


def entries(sentences: list[str], n: int, duplicates: bool) -> list[str]:
    """n entries: sentence i % S joined with sentence (i % S + 1 + i // S) % S, distinct for i < S (S - 1);
    with `duplicates`, each of n / 3 such entries three times in a row."""
    s = len(sentences)

    def pair(i: int) -> str:
        return f"{sentences[i % s]} {sentences[(i % s + 1 + i // s) % s]}"

    if duplicates:
        return [pair(i // 3) for i in range(n)]
    return [pair(i) for i in range(n)]


def ours(texts: list[str], questions: list[str], index_class: type = MemoryIndex) -> tuple[float, float]:
    start = time.process_time()
    index = index_class(texts, epsilon=0.25)
    built = time.process_time()
    index.search_many(questions, TOP_K)
    return built - start, time.process_time() - built


def peak_memory(texts: list[str], questions: list[str], index_class: type = MemoryIndex) -> tuple[int, Any]:
    """Peak bytes allocated while an index is built and searched (the index included), and the index."""
    tracemalloc.start()
    index = index_class(texts, epsilon=0.25)
    index.search_many(questions, TOP_K)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, index


def baseline_index(ref: str) -> type:
    """`MemoryIndex` of `benchmark/retrieval.py` at git revision `ref`."""
    source = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parents[1]), "show", f"{ref}:benchmark/retrieval.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"retrieval_at_{ref}")
    exec(compile(source, f"{ref}:benchmark/retrieval.py", "exec"), module.__dict__)  # our own file, at REF
    return module.MemoryIndex


def with_bm25s(texts: list[str], questions: list[str]) -> tuple[float, float]:
    start = time.process_time()
    retriever = bm25s.BM25(method="atire", idf_method="robertson", k1=1.5, b=0.75)
    retriever.index(bm25s.tokenize(texts, stopwords=None, show_progress=False), show_progress=False)
    built = time.process_time()
    retriever.retrieve(bm25s.tokenize(questions, stopwords=None, show_progress=False), k=TOP_K, show_progress=False)
    return built - start, time.process_time() - built


def original(texts: list[str], questions: list[str]) -> float:
    start = time.process_time()
    for q in questions:
        bm25 = BM25Okapi([tokenize(t) for t in texts], k1=1.5, b=0.75)
        np.argsort(bm25.get_scores(tokenize(q)))[::-1][:TOP_K]
    return (time.process_time() - start) / len(questions)


def baseline_cells(times: list | None, texts: list[str], questions: list[str], old: type | None, chars: int) -> str:
    if old is None:
        return ""
    if times is None:
        return " — | — |"
    peak, _ = peak_memory(texts, questions, old)
    per_question = [(b + s) / len(questions) for b, s in times]
    return f" {spread(per_question, 1000)} | {peak / 2**20:,.1f} ({peak / chars:.1f}) |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("MEMALPHA_RAW_DIR", "../shared/data/raw")))
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duplicates", action="store_true", help="every entry three times")
    parser.add_argument("--original-questions", type=int, default=2)
    parser.add_argument("--original-max", type=int, default=100_000)
    parser.add_argument("--bm25s-max", type=int, default=1_000_000)
    parser.add_argument("--baseline", metavar="REF", help="also time benchmark/retrieval.py of this git revision")
    parser.add_argument("--baseline-max", type=int, default=100_000)
    args = parser.parse_args()
    sentences, questions = corpus(args.raw_dir)
    qs = questions[:QUESTIONS]
    old = baseline_index(args.baseline) if args.baseline else None
    print(
        f"CPU cores: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}; {len(qs)} questions; "
        f"top {TOP_K}; {'each entry three times' if args.duplicates else 'distinct entries'}"
    )
    print("CPU ms per question, median (range) of the repeats; ours: (build + search) / questions")
    print(
        "| entries | characters | ours: build s | ours: search s | ours: ms/question | bm25s: ms/question "
        "| original: ms/question | ours: peak MB (bytes/char) | ours: index MB |"
        + (f" {args.baseline}: ms/question | {args.baseline}: peak MB (bytes/char) |" if old else "")
    )
    print("|---:|---:|---|---|---|---|---|---|---|" + ("---|---|" if old else ""))
    for n in args.sizes:
        texts = entries(sentences, n, args.duplicates)
        chars = sum(map(len, texts))
        for index_class in (MemoryIndex, old) if old else (MemoryIndex,):  # warm: the tables every index shares
            ours(texts[:100], qs[:5], index_class)
        runs: dict[str, Callable[[], tuple[float, float] | float]] = {"ours": lambda t=texts: ours(t, qs)}
        if n <= args.bm25s_max:
            runs["bm25s"] = lambda t=texts: with_bm25s(t, qs)
        if n <= args.original_max:
            runs["original"] = lambda t=texts: original(t, qs[: args.original_questions])
        if old is not None and n <= args.baseline_max:
            runs["baseline"] = lambda t=texts: ours(t, qs, old)
        times: dict[str, list] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, run in runs.items():
                times[name].append(run())
        build = [b for b, _ in times["ours"]]
        search = [s for _, s in times["ours"]]
        per_question = [(b + s) / len(qs) for b, s in times["ours"]]
        peak, index = peak_memory(texts, qs)
        size = index.nbytes()
        del index
        anchors = {
            "bm25s": spread([(b + s) / len(qs) for b, s in times["bm25s"]], 1000) if "bm25s" in times else "—",
            "original": spread(times["original"], 1000, 1) if "original" in times else "—",
        }
        print(
            f"| {n:,} | {chars:,} | {spread(build)} | {spread(search)} | {spread(per_question, 1000)} "
            f"| {anchors['bm25s']} | {anchors['original']} | {peak / 2**20:,.1f} ({peak / chars:.1f}) "
            f"| {size / 2**20:,.1f} |" + baseline_cells(times.get("baseline"), texts, qs, old, chars),
            flush=True,
        )
        del texts
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
