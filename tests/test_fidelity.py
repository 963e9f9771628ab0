"""Faithfulness, proved on what the original scorers returned (`../shared/fidelity/original_scorers.jsonl`).

- `memalpha-paper` returns `expected` on every `memalpha-eval:*` and `memalpha:*` row, and on the rows of
  each MemoryAgentBench scorer it uses, through `memalpha metric`'s own function;
- the faithful reward r1 (`RewardScorer` with its default profile) returns `expected` on every
  `memalpha-train:*` and `memalpha:*` row, reader and judge replies scripted to the rows' predictions;
- v1's agreement with each original scorer is computed and must equal the table in docs/fidelity.md;
- `memalpha-paper`'s retrieval, run through the scorer's own `prepare`, gives exactly the ranked lists of
  rank-bm25 built the original's way on real text.

The InfiniteBench summary rows of the file carry an 80-character prefix of the prediction and the word
"summary" for the gold; both are restored from the real file they come from
(`$MEMALPHA_RAW_DIR/infinitebench/gpt4_preds_longbook_sum_eng.jsonl`, in order).
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from rank_bm25 import BM25Okapi
from tabulate import tabulate

from benchmark.memory import Memory, MemoryEntry, MemoryRecord
from benchmark.metric_lines import MetricInputError, score_line
from benchmark.profiles import get_profile
from benchmark.prompting import ReaderPrompt
from benchmark.readers.base import ReaderRequest, ReaderResponse
from benchmark.scoring import TaskData, prepare
from reference_agent.rewards import RewardScorer, Rollout
from tasks.chunking import split_sentences
from tasks.sources.classification import read_trec_file
from tasks.sources.squad import read_squad_file
from tasks.tokenization import SimpleCounter
from tasks.wrappers import label_question, labelled

pytestmark = pytest.mark.realdata

DOC = Path(__file__).resolve().parent.parent / "docs" / "fidelity.md"
TASK_OF = {
    "memalpha-eval:squad_hotpotqa": "squad",
    "memalpha-eval:ruler_qa": "ruler_qa1_197k",
    "memalpha-eval:icl_label": "icl_banking77",
    "memalpha-eval:booksum_infbench_keywords": "booksum",
    "memalpha:perltqa_keywords": "perltqa",
    "memalpha:judge_verdict": "lme_train",
    "memalpha-train:squad_hotpotqa": "squad",
    "memalpha-train:ttl_icl_label": "ttl_trec_coarse",
    "memalpha-train:pubmed_rct_label": "pubmed_rct",
    "memalpha-train:booksum_keywords": "booksum",
    "memalpha-train:infbench_sum_rougeL": "infbench_sum",
    "memalpha-baselines:ruler_qa": "ruler_qa1_197k",
    "memalpha-baselines:icl_label": "icl_banking77",
    "mab:substring_exact_match": "factconsolidation_sh",
    "mab:exact_match": "detective_qa",
    "mab:f1": "locomo",
    "mab:eventqa_parsed": "eventqa",
    "mab:icl_exact_match": "icl_banking77",
    "mab:judge_verdict": "longmemeval_s",
}
"""A task each original scorer scores, in the profile that reproduces it (and in v1, for the agreement)."""
PAPER_REPRODUCES = ("memalpha-eval:", "memalpha:", "mab:substring", "mab:exact", "mab:f1", "mab:eventqa")
PAPER_IDS = {"memalpha:perltqa_keywords": "memalpha-eval:perltqa_keywords", "memalpha:judge_verdict": "llm_judge"}


@pytest.fixture(scope="module")
def rows(fidelity_file: Path, raw_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in fidelity_file.read_text(encoding="utf-8").splitlines()]
    assert set(TASK_OF) == {r["original_scorer"] for r in rows}  # a new scorer in the file needs a task here
    source = raw_dir / "infinitebench" / "gpt4_preds_longbook_sum_eng.jsonl"
    summaries = iter([json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()])
    out = []
    for row in rows:
        if row["kind"] == "infbench_sum_real":  # restore the whole prediction and the real gold summary
            item = next(s for s in summaries if s["prediction"].startswith(row["prediction"]))
            row = {**row, "prediction": item["prediction"], "golds": item["ground_truth"]}
        out.append(row)
    return out


def line_of(row: dict[str, Any]) -> dict[str, Any]:
    """The row as a `memalpha metric` input line; a judge-verdict row's prediction is the judge's reply."""
    line = {"task": TASK_OF[row["original_scorer"]], "prediction": row["prediction"], "golds": row["golds"]}
    if row["original_scorer"].endswith(":judge_verdict"):
        line["judge_reply"] = row["prediction"]
    return line


def metric_result(profile: str, row: dict[str, Any]) -> float | str:
    """What `memalpha metric --profile` makes of the row: its score, or "ERR" where it refuses the input."""
    try:
        return score_line(get_profile(profile), line_of(row))["score"]
    except MetricInputError:
        return "ERR"


def agrees(got: float | str, expected: float | str) -> bool:
    if isinstance(expected, str):
        return got == "ERR" if expected.startswith("ERR") else False
    return not isinstance(got, str) and abs(got - expected) < 1e-9


def test_memalpha_paper_returns_expected_on_every_row_of_the_scorers_it_reproduces(rows):
    paper = get_profile("memalpha-paper")
    checked: dict[str, int] = defaultdict(int)
    wrong = []
    for row in rows:
        scorer = row["original_scorer"]
        if not scorer.startswith(PAPER_REPRODUCES):
            continue
        assert paper.scorer_for(TASK_OF[scorer]).id == PAPER_IDS.get(scorer, scorer)
        checked[scorer] += 1
        got = metric_result("memalpha-paper", row)
        if not agrees(got, row["expected"]):
            wrong.append((scorer, row["kind"], row["prediction"][:60], row["golds"], row["expected"], got))
    assert not wrong, f"{len(wrong)} rows differ, e.g. {wrong[:5]}"
    eval_ids = {r["original_scorer"] for r in rows if r["original_scorer"].startswith(("memalpha-eval:", "memalpha:"))}
    assert eval_ids <= set(checked)
    assert {"mab:substring_exact_match", "mab:exact_match", "mab:f1", "mab:eventqa_parsed"} <= set(checked)
    assert sum(checked.values()) > 2800


class RowReader:
    """A reader (or judge) answering question i of the batch with the prediction of row i."""

    def __init__(self, replies: dict[str, str]):
        self.replies = replies

    def describe(self) -> dict:
        return {"backend": "rows"}

    def generate(self, requests: list[ReaderRequest], on_result=None) -> list[ReaderResponse]:
        out = []
        for i, request in enumerate(requests):
            key = re.search(r"question (\d+)\?", request.messages[-1][1]).group(1)
            out.append(ReaderResponse.from_raw(self.replies[key], 1, 1))
            if on_result:
                on_result(i, out[-1])
        return out


def test_the_faithful_reward_r1_returns_expected_on_every_training_row(rows):
    """r1 of a rollout with one question is that question's score: the reader says the row's prediction."""
    train = [r for r in rows if r["original_scorer"].startswith(("memalpha-train:", "memalpha:"))]
    undefined = [r for r in train if r["expected"] == "n/a"]
    # the reward only ever received keyword strings: a keyword list has no result there
    assert {(r["original_scorer"], isinstance(r["golds"], list) and len(r["golds"]) > 1) for r in undefined} == {
        ("memalpha-train:booksum_keywords", True)
    }
    train = [r for r in train if r["expected"] != "n/a"]
    rollouts, answers, verdicts = [], {}, {}
    for i, row in enumerate(train):
        golds = row["golds"] if isinstance(row["golds"], list) else [row["golds"]]
        question = {"question_id": f"q{i}", "question": f"question {i}?", "answers": golds}
        judged = row["original_scorer"].endswith(":judge_verdict")
        answers[str(i)] = "The response." if judged else row["prediction"]
        verdicts[str(i)] = row["prediction"]
        rollouts.append(Rollout(TASK_OF[row["original_scorer"]], f"r{i}", [question], ["x"], Memory(), [[]]))
    scorer = RewardScorer(RowReader(answers), SimpleCounter(), judge=RowReader(verdicts))
    assert scorer.profile.id == "memalpha-train@1"
    r1, failed = scorer.qa_accuracy(rollouts)
    assert not failed
    wrong = [
        (row["original_scorer"], row["prediction"][:60], row["golds"], row["expected"], got)
        for row, got in zip(train, r1, strict=True)
        if not agrees(got, row["expected"])
    ]
    assert not wrong, f"{len(wrong)} rows differ, e.g. {wrong[:5]}"
    ids = {r["original_scorer"] for r in train}
    assert {i for i in TASK_OF if i.startswith("memalpha-train:")} <= ids and len(train) > 750


def v1_agreement(rows: list[dict[str, Any]]) -> str:
    """Per original scorer: rows with a defined result, and the share v1 scores the same."""
    by_scorer: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        if isinstance(row["expected"], str):
            continue
        by_scorer[row["original_scorer"]].append(agrees(metric_result("v1", row), row["expected"]))
    table = [[f"`{s}`", f"`{TASK_OF[s]}`", len(v), f"{statistics.fmean(v):.3f}"] for s, v in sorted(by_scorer.items())]
    return tabulate(
        table,
        headers=["original scorer", "scored as task", "rows", "v1 agrees"],
        tablefmt="github",
        disable_numparse=True,
    )


def test_v1_agreement_per_original_scorer_is_the_one_docs_fidelity_quotes(rows):
    table = v1_agreement(rows)
    doc = DOC.read_text(encoding="utf-8")
    quoted = doc.split("<!-- v1-agreement:start -->\n", 1)[1].split("\n<!-- v1-agreement:end -->", 1)[0]
    assert quoted.strip() == table, f"docs/fidelity.md quotes another agreement; the measured one is:\n{table}"


def original_ranking(entries: list[str], query: str, k: int) -> list[int]:
    """The memory server's retrieval: rank-bm25 BM25Okapi with its defaults on `\\b\\w+\\b` lower-cased
    tokens, built for this query, top k of a stable descending sort; no word in the query, nothing."""
    tokens = re.findall(r"\b\w+\b", query.lower())
    if not tokens:
        return []
    scores = BM25Okapi([re.findall(r"\b\w+\b", e.lower()) for e in entries]).get_scores(tokens)
    ranked = sorted(range(len(entries)), key=lambda i: scores[i], reverse=True)
    return ranked[:k]


def test_memalpha_paper_retrieval_is_rank_bm25_built_the_original_way_on_real_text(raw_dir):
    """Through the scorer's own `prepare`: SQuAD sentences as semantic entries, labelled TREC questions as
    episodic ones; SQuAD questions (no query prompt) and label questions (with the ICL query prompt, which
    the original retrieved on too)."""
    paragraphs = read_squad_file(next((raw_dir / "squad").glob("*.json")))[:60]
    sentences = [s.strip() for p in paragraphs for s in split_sentences(p.context) if s.strip()]
    examples = read_trec_file(raw_dir / "trec" / "train_5500.label", fine=False)
    semantic = sentences[:300] + sentences[:5]  # repeated entries: exact ties, broken by memory order
    episodic = [labelled(e.text, str(e.label)) for e in examples[:400]]
    memory = Memory(
        "The user reads Wikipedia and classifies questions.",
        tuple(MemoryEntry(f"s{i}", t) for i, t in enumerate(semantic)),
        tuple(MemoryEntry(f"e{i}", t) for i, t in enumerate(episodic)),
    )
    squad_qs = [*[qa.question for p in paragraphs for qa in p.qas][:80], "?!"]
    label_qs = [label_question(e.text) for e in examples[400:480]]
    profile = get_profile("memalpha-paper")
    prompt = ReaderPrompt.for_profile(profile)
    records, tasks = [], {}
    for task, questions in (("squad", squad_qs), ("icl_trec_coarse", label_qs)):
        rows = {"i": {"questions": [{"question_id": f"q{j}", "question": q} for j, q in enumerate(questions)]}}
        records.append(MemoryRecord("i", task, memory))
        tasks[task] = TaskData(rows, "", {})
    items = prepare(records, tasks, profile.defaults, prompt, SimpleCounter(), profile)
    assert len(items) == len(squad_qs) + len(label_qs)
    for item in items:
        user = item.request.messages[-1][1]
        assert user.endswith(item.question["question"])
        for kind, entries in (("semantic", semantic), ("episodic", episodic)):
            expected = [f"{kind[0]}{i}" for i in original_ranking(entries, user, 20)]
            assert item.retrieved[kind] == expected, (item.record.task, item.question["question"], kind)
    assert any(item.retrieved["semantic"] == [] for item in items)  # "?!" has no word: nothing
