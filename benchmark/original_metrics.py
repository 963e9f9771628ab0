"""The original scorers, re-implemented mechanism by mechanism: what `memalpha-paper` and `memalpha-train`
score with (`benchmark/profiles.py`).

Each function returns what one code path of the originals returned (Mem-alpha @ 9c0e1f6,
MemoryAgentBench @ 455306d), quirks included; tests hold every function to the outputs the original code
gave on real pairs (`$MEMALPHA_SHARED/fidelity/original_scorers.jsonl`). The ids are those of that file:

- `memalpha-eval:*`: Mem-alpha's evaluation script (`evaluate_agent_results.py`), the paper's numbers;
- `memalpha-train:*`: Mem-alpha's training reward (`naive.py`), r1;
- `memalpha:*`: the same in both;
- `mab:*`: MemoryAgentBench's `eval_other_utils.py`.

Golds come as the harness holds them: a list of strings (`answers`). The Mem-alpha scorers received one
string per question (a label, a `;`-joined PerLTQA answer, a `,`-joined keyword list), so a list of one
string stands for that string; a longer list is what our builders made of such a string (keywords,
PerLTQA parts, aliases) and is used as the original used a list where it accepted one, or as the
parts of the string where it did not (noted per function). MemoryAgentBench's scorers took the list
itself (lists of lists are flattened, as there).

Where an original raised, these raise `OriginalScorerError`; nothing here is more lenient than the
original on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from .metrics import _f1, normalize_answer

Golds = Sequence[Any]
ScorerFunction = Callable[[str, Golds], float]


class OriginalScorerError(ValueError):
    """Input on which the original scorer raised an exception (its result is undefined)."""


# ---------------------------------------------------------------- shared pre-steps


def eval_think(prediction: str) -> str:
    """Mem-alpha eval's think step. Its test `"<think>" and "</think>" in x` looks only for the closing
    tag: the answer is the text between the first and any second `</think>`; an opening tag left
    after that makes the answer "Empty"."""
    if "</think>" in prediction:
        prediction = prediction.split("</think>")[1].strip()
    return "Empty" if "<think>" in prediction else prediction


def train_think(prediction: str) -> str:
    """The training reward's think step: the same, but only when both tags occur."""
    if "<think>" in prediction and "</think>" in prediction:
        prediction = prediction.split("</think>")[1].strip()
    return "Empty" if "<think>" in prediction else prediction


def single(golds: Golds) -> Any:
    """What a Mem-alpha scorer received: a one-element list is its string; anything else as it is."""
    return golds[0] if isinstance(golds, list | tuple) and len(golds) == 1 else golds


# ---------------------------------------------------------------- Mem-alpha: short answers


def contains_first_gold(prediction: str, golds: Golds) -> float:
    """squad / hotpotqa: the first gold, lower-cased, is a substring of the lower-cased answer."""
    gold = single(golds)
    if isinstance(gold, list | tuple):
        gold = str(gold[0]) if gold else ""
    return float(str(gold).lower() in prediction.lower())


def perltqa_parts(prediction: str, golds: Golds) -> float:
    """PerLTQA: with `;` in the gold, the share of its parts (lower-cased, stripped) found in the answer
    as written: the answer is not lower-cased (the original's case bug); empty parts count as found.
    Without `;`, a lower-cased substring test. A list of several golds is taken as those parts."""
    gold = single(golds)
    parts = [str(g) for g in gold] if isinstance(gold, list | tuple) else None
    if parts is None and ";" in gold:
        parts = gold.split(";")
    if parts is None:
        return float(gold.lower() in prediction.lower())
    if not parts:
        raise OriginalScorerError("no gold parts (the original divided by zero)")
    return sum(p.lower().strip() in prediction for p in parts) / len(parts)


# ---------------------------------------------------------------- Mem-alpha: labels

_FIRST_BOX = re.compile(r"\\boxed\{([^}]*)\}")
_DIGITS = re.compile(r"^\d+$")
_QUOTES = "\"'"


def first_boxed_or_all(prediction: str) -> str:
    """The first `\\boxed{...}` without nested braces, stripped; else the whole answer, stripped."""
    match = _FIRST_BOX.search(prediction)
    return match.group(1).strip() if match else prediction.strip()


def _label_match(prediction: str, gold: Any) -> float:
    label = first_boxed_or_all(prediction).strip(_QUOTES).strip()
    if not _DIGITS.match(label):
        return 0.0
    return float(label == str(gold).strip(_QUOTES).strip())


def eval_label(prediction: str, golds: Golds) -> float:
    """pubmed-rct / TTL / ICL (eval): the boxed (or whole) answer must be digits only and equal the gold;
    a list gold counts by its first element."""
    gold = single(golds)
    if isinstance(gold, list | tuple):
        gold = gold[0]
    return _label_match(prediction, gold)


def train_label(prediction: str, golds: Golds) -> float:
    """The same in the training reward, which only ever received one label string; several golds (a
    sentence our builders found with two labels) count if any matches."""
    gold = single(golds)
    if isinstance(gold, list | tuple):
        return max((_label_match(prediction, g) for g in gold), default=0.0)
    return _label_match(prediction, gold)


# ---------------------------------------------------------------- Mem-alpha: keywords and ROUGE


def _keyword_share(prediction: str, keywords: Sequence[str]) -> float:
    if not keywords:
        raise OriginalScorerError("no keywords (the original divided by zero)")
    text = prediction.lower()
    return sum(str(k).lower() in text for k in keywords) / len(keywords)


def eval_keywords(prediction: str, golds: Golds) -> float:
    """booksum / infbench_sum (eval): a keyword string is split at ", " exactly (so "a,b" is one
    keyword); a keyword list is used as given; the share found, lower-cased, in the answer."""
    gold = single(golds)
    return _keyword_share(prediction, gold.split(", ") if isinstance(gold, str) else list(gold))


def train_keywords(prediction: str, golds: Golds) -> float:
    """booksum (training reward): the keyword string is split at "," and each keyword stripped. The
    original only received strings; a list is taken as its keywords (what the split would give)."""
    gold = single(golds)
    keywords = gold.split(",") if isinstance(gold, str) else [str(g) for g in gold]
    return _keyword_share(prediction, [k.strip() for k in keywords])


@cache
def _rouge_scorer():
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise ImportError(
            "the training reward's ROUGE-L is rouge-score's (Porter stemmer); install it with "
            "`pip install 'memalpha-bench[paper]'`"
        ) from exc
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def _rouge_l(prediction: str, golds: list[str]) -> float:
    scorer = _rouge_scorer()
    return max(scorer.score(target=g, prediction=prediction)["rougeL"].fmeasure for g in golds)


# ---------------------------------------------------------------- MemoryAgentBench (also Mem-alpha's copy)

_ANSWER_LINE = re.compile(r"(?:Answer:)(.*)(?:\n|$)", re.IGNORECASE)
_FIRST_LINE = re.compile(r"(?:^)(.*)(?:\n|$)")
_ANSWER_PREFIX = re.compile(r"^Answer:", re.IGNORECASE)


def mab_parse_output(prediction: str) -> str:
    """MAB's parsed output: the rest of the line after the first "Answer:", else the first line (which
    may be empty); a repeated "Answer:" at its start is removed."""
    match = _ANSWER_LINE.search(prediction) or _FIRST_LINE.search(prediction)
    return _ANSWER_PREFIX.sub("", match[1].strip()).strip()


def mab_golds(golds: Golds) -> list[str]:
    """MAB's gold list: a string is one gold; a list whose first item is a list is flattened."""
    if isinstance(golds, str):
        return [golds]
    if golds and isinstance(golds[0], list | tuple):
        return [g for group in golds for g in group]
    return list(golds)


def _checked(golds: list[Any]) -> list[str]:
    if not golds:
        raise OriginalScorerError("no golds (the original took the max of nothing)")
    bad = [g for g in golds if not isinstance(g, str)]
    if bad:
        raise OriginalScorerError(f"gold {bad[0]!r} is not a string (the original failed on it)")
    return golds


def _mab_best(prediction: str, golds: Golds, pair: Callable[[str, str], float], *, parsed_only: bool = False) -> float:
    """max over golds of `pair(normalised prediction, normalised gold)`, on the raw and the parsed output
    (the parsed one only, for EventQA)."""
    items = _checked(mab_golds(golds))
    parsed = mab_parse_output(prediction)
    outputs = (parsed,) if parsed_only else (prediction, parsed)
    return max(float(pair(normalize_answer(p), normalize_answer(g))) for p in outputs for g in items)


def _substring(p: str, g: str) -> float:
    return float(g in p)


def _equal(p: str, g: str) -> float:
    return float(p == g)


def mab_substring_em(prediction: str, golds: Golds) -> float:
    """`substring_exact_match` of MAB's default post-processing (ruler_qa, FactConsolidation, and
    Mem-alpha's fallback for any other source)."""
    return _mab_best(prediction, golds, _substring)


def mab_exact_match(prediction: str, golds: Golds) -> float:
    """`exact_match` of the default post-processing (DetectiveQA)."""
    return _mab_best(prediction, golds, _equal)


def mab_f1(prediction: str, golds: Golds) -> float:
    """`f1` of the default post-processing (token F1; yes/no/noanswer must match exactly)."""
    return _mab_best(prediction, golds, _f1)


def mab_eventqa(prediction: str, golds: Golds) -> float:
    """`substring_exact_match` of MAB's EventQA post-processing: the parsed output only. The original
    first computed a recall that lower-cases each gold, so nested golds made it fail."""
    if not golds:
        raise OriginalScorerError("no golds (the original divided by zero)")
    if not isinstance(golds, str) and any(not isinstance(g, str) for g in golds):
        raise OriginalScorerError("EventQA golds must be strings (the original failed on nested lists)")
    return _mab_best(prediction, golds, _substring, parsed_only=True)


def train_rouge_l(prediction: str, golds: Golds) -> float:
    """infbench_sum in the training reward: rouge-score's ROUGE-L F1 (Porter stemmer), max over golds, on
    the raw and the parsed output."""
    items = _checked(mab_golds(golds))
    return max(_rouge_l(p, items) for p in (prediction, mab_parse_output(prediction)))


# ---------------------------------------------------------------- Mem-alpha's LongMemEval judge


def memalpha_verdict(reply: str) -> float:
    """Mem-alpha's rule: 1 when the lower-cased reply contains "yes" and does not contain "no" (so
    "Yes, nothing is missing" and "I know it: yes" fail: the test is on substrings)."""
    text = reply.strip().lower()
    return float("yes" in text and "no" not in text)


# ---------------------------------------------------------------- the registry, by original id


def _eval(function: ScorerFunction) -> ScorerFunction:
    return lambda prediction, golds: function(eval_think(prediction), golds)


def _train(function: ScorerFunction) -> ScorerFunction:
    return lambda prediction, golds: function(train_think(prediction), golds)


SCORERS: dict[str, ScorerFunction] = {
    "memalpha-eval:squad_hotpotqa": _eval(contains_first_gold),
    "memalpha-eval:ruler_qa": _eval(mab_substring_em),
    "memalpha-eval:icl_label": _eval(eval_label),
    "memalpha-eval:booksum_infbench_keywords": _eval(eval_keywords),
    "memalpha-eval:perltqa_keywords": _eval(perltqa_parts),
    "memalpha-train:squad_hotpotqa": _train(contains_first_gold),
    "memalpha-train:ttl_icl_label": _train(train_label),
    "memalpha-train:pubmed_rct_label": _train(train_label),
    "memalpha-train:booksum_keywords": _train(train_keywords),
    "memalpha-train:infbench_sum_rougeL": _train(train_rouge_l),
    "memalpha-train:perltqa_keywords": _train(perltqa_parts),
    "memalpha-train:default_substring": _train(mab_substring_em),
    "mab:substring_exact_match": mab_substring_em,
    "mab:exact_match": mab_exact_match,
    "mab:f1": mab_f1,
    "mab:eventqa_parsed": mab_eventqa,
}
"""Every re-implemented scorer by its id. `memalpha:perltqa_keywords` of the fidelity file is the eval's
and the reward's `perltqa` branch (the same code in both). MemoryAgentBench's ICL exact match and judge
rule are not here: no profile scores with them (`memalpha-paper` scores ICL and LongMemEval as Mem-alpha
did)."""


def rubric_judge_prompt(question: str, golds: Golds, prediction: str) -> list[dict[str, str]]:
    """Mem-alpha's one LongMemEval judge prompt for every question (our wording of its content): the gold
    is read as a rubric, the response need not cover all of it but must recall and use the user's
    information correctly; one user message, a yes/no reply. A list gold is shown as Python prints it."""
    user = (
        "You are given a question, a rubric describing the personalised response that is wanted, and a "
        "model's response. Reply yes if the response satisfies the rubric, and no if it does not. The "
        "response does not have to cover every point of the rubric: it counts as correct as long as it "
        "recalls the user's personal information and uses it correctly.\n\n"
        f"Question: {question}\n\nRubric: {single(golds)}\n\nModel response: {prediction}\n\n"
        "Is the model response correct? Reply with yes or no only."
    )
    return [{"role": "user", "content": user}]
