"""What the retrieval and reader-prompt departures of `v1` from `memalpha-paper` do, on the shared real data.

Run by hand (figures go into docs/fidelity.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_fidelity.py

1. Retrieval on ICL memories. The five MemoryAgentBench ICL sets are built from their raw release
   files; a memory holds one entry per labelled example ("Sentence: ...\\nLabel: n", the form the
   chunks show them in), and each of the set's 100 questions retrieves the top 20. Per retrieval
   rule: how many questions get the same top-20 set as the paper's rule, and the share of retrieved
   examples that carry the question's gold label (what a reader can learn the label from).
2. Retrieval on sentence memories: SQuAD, HotpotQA and LoCoMo built from their raw files, each
   instance's chunks split into sentences, one entry each, its questions (no query prompt: only the
   idf floor differs). The same top-20 comparison, and the share of questions whose top 20 hold a
   sentence containing a gold answer (both normalised).
3. The reader prompt's length instruction, on keyword recall: real InfiniteBench GPT-4 summaries
   against the keyword golds they are paired with in the fidelity vectors, whole and cut to their first
   half (what a reader told to be brief is pushed towards), scored by the `memalpha-eval` keyword
   scorer and by v1's `keyword_recall`.

The retrieval rules compared: the paper's (rank-bm25's epsilon floor 0.25, query = the task's query
prompt + a blank line + the question), v1@1's (idf floored at 0, the question alone), the two halves of
that change alone, and retrieval on the bare sentence (the question's instruction line removed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from tabulate import tabulate

from benchmark import metrics, original_metrics
from benchmark.retrieval import MemoryIndex
from tasks.build import build_task
from tasks.chunking import split_sentences
from tasks.manifest import load_built
from tasks.registry import get_task

QA_TASKS = ("squad", "hotpotqa", "locomo")
FLOORS = (("paper, v1@2: epsilon 0.25", 0.25), ("v1@1: floor 0", None))
ICL_TASKS = ("icl_banking77", "icl_clinic150", "icl_nlu", "icl_trec_coarse", "icl_trec_fine")
EXAMPLE = re.compile(r"Sentence: (.*)\nLabel: (\S+)")
TOP_K = 20
Rule = tuple[str, float | None, Callable[[str, str | None], str]]


def with_prompt(question: str, prompt: str | None) -> str:
    return f"{prompt}\n\n{question}" if prompt else question


def bare_sentence(question: str, prompt: str | None) -> str:
    return question.split("\n", 1)[0].removeprefix("Sentence: ")


RULES: tuple[Rule, ...] = (
    ("paper: epsilon 0.25, query prompt + question", 0.25, with_prompt),
    ("epsilon 0.25, question alone", 0.25, lambda q, p: q),
    ("floor 0, query prompt + question", None, with_prompt),
    ("v1@1: floor 0, question alone", None, lambda q, p: q),
    ("floor 0, bare sentence", None, bare_sentence),
    ("v1@2: epsilon 0.25, bare sentence", 0.25, bare_sentence),
)


def icl_memory(task: str, data: Path) -> tuple[list[str], list[str], list[dict]]:
    dataset, _ = load_built(data, task)
    row = dataset["test"][0]
    pairs = [m.groups() for chunk in row["chunks"] for m in EXAMPLE.finditer(chunk)]
    return [f"Sentence: {s}\nLabel: {lab}" for s, lab in pairs], [lab for _, lab in pairs], row["questions"]


def retrieval_table(rows: list[list]) -> str:
    return tabulate(rows, headers=["memory", "rule", "same top-20 as paper", "gold-label share"], tablefmt="github")


def icl_retrieval(raw_dir: Path, out: Path) -> str:
    rows = []
    for task in ICL_TASKS:
        build_task(task, out, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)
        entries, labels, questions = icl_memory(task, out)
        prompt = get_task(task).query_prompt
        ranked = {}
        for name, epsilon, query in RULES:
            index = MemoryIndex(entries, epsilon=epsilon)
            ranked[name] = index.search_many([query(q["question"], prompt) for q in questions], TOP_K)
        paper = ranked[RULES[0][0]]
        for name, _, _ in RULES:
            same = sum(set(a) == set(b) for a, b in zip(ranked[name], paper, strict=True))
            share = statistics.fmean(
                statistics.fmean(labels[i] in q["answers"] for i in got)
                for got, q in zip(ranked[name], questions, strict=True)
            )
            rows.append([f"{task} ({len(entries)} examples)", name, f"{same}/{len(questions)}", f"{share:.3f}"])
        chance = statistics.fmean(statistics.fmean(lab in q["answers"] for lab in labels) for q in questions)
        rows.append([f"{task} ({len(entries)} examples)", "any example at random", "", f"{chance:.3f}"])
    return retrieval_table(rows)


def qa_retrieval(raw_dir: Path, out: Path) -> str:
    """Sentence memories of the QA tasks' real instances: does the top 20 hold a sentence with a gold?"""
    rows = []
    for task in QA_TASKS:
        build_task(task, out, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)
        dataset, _ = load_built(out, task)
        instances = [row for split in dataset.values() for row in split]
        ranked: dict[str, list[list[int]]] = {name: [] for name, _ in FLOORS}
        found: dict[str, list[bool]] = {name: [] for name, _ in FLOORS}
        for row in instances:
            entries = [s.strip() for c in row["chunks"] for s in split_sentences(c) if s.strip()]
            normalised = [metrics.normalize_answer(e) for e in entries]
            for name, epsilon in FLOORS:
                got = MemoryIndex(entries, epsilon=epsilon).search_many(
                    [q["question"] for q in row["questions"]], TOP_K
                )
                ranked[name] += got
                for top, q in zip(got, row["questions"], strict=True):
                    golds = [g for g in map(metrics.normalize_answer, q["answers"]) if g]
                    found[name].append(any(g in normalised[i] for i in top for g in golds))
        paper = ranked[FLOORS[0][0]]
        for name, _ in FLOORS:
            same = sum(set(a) == set(b) for a, b in zip(ranked[name], paper, strict=True))
            share = statistics.fmean(found[name])
            rows.append([f"{task} ({len(instances)} instances)", name, f"{same}/{len(paper)}", f"{share:.3f}"])
    return tabulate(rows, headers=["memory", "rule", "same top-20 as paper", "gold in top 20"], tablefmt="github")


def first_half(text: str) -> str:
    words = text.split(" ")
    return " ".join(words[: len(words) // 2])


def summary_length(fidelity: Path) -> str:
    rows = [json.loads(line) for line in fidelity.read_text(encoding="utf-8").splitlines()]
    pairs = [r for r in rows if r["original_scorer"] == "memalpha-eval:booksum_infbench_keywords"]
    scorers = {
        "memalpha-eval keywords": original_metrics.SCORERS["memalpha-eval:booksum_infbench_keywords"],
        "v1 keyword_recall": metrics.keyword_recall,
    }
    out = []
    for name, scorer in scorers.items():
        whole = statistics.fmean(scorer(r["prediction"], r["golds"]) for r in pairs)
        half = statistics.fmean(scorer(first_half(r["prediction"]), r["golds"]) for r in pairs)
        out.append([name, len(pairs), f"{whole:.3f}", f"{half:.3f}", f"{(half - whole) / whole:+.1%}"])
    return tabulate(out, headers=["scorer", "pairs", "whole", "first half", "change"], tablefmt="github")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-dir", type=Path, default=os.environ.get("MEMALPHA_RAW_DIR"))
    parser.add_argument("--fidelity", type=Path, default=Path("../shared/fidelity/original_scorers.jsonl"))
    args = parser.parse_args()
    if args.raw_dir is None:
        parser.error("give --raw-dir or set MEMALPHA_RAW_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        print("## Retrieval on ICL memories\n\n" + icl_retrieval(Path(args.raw_dir), Path(tmp)) + "\n")
        print("## Retrieval on sentence memories of QA tasks\n\n" + qa_retrieval(Path(args.raw_dir), Path(tmp)) + "\n")
    print("## Summary length and keyword recall\n\n" + summary_length(args.fidelity))


if __name__ == "__main__":
    main()
