"""Answer metrics: one pure function per metric of `tasks.registry.METRICS`, and the LLM-judge prompts.

Every task is scored by this one module. The originals had three scorers that disagree (Mem-alpha's training
reward, its eval script and its baselines, plus MemoryAgentBench's own). Where we differ from them:

- Shared pre-step: `score` strips a `<think>` block first, as every original scorer did. We write the check
  correctly (the originals wrote `"<think>" and "</think>" in x`, which tests only the closing tag).
- `substring_em`, `exact_match` and `token_f1` follow MemoryAgentBench (DrQA normalisation). Each takes the
  max over all golds and over the raw and the parsed prediction. The parsed prediction is the text after
  "Answer:", else the first line. Mem-alpha's squad/hotpotqa reward was a lower-case substring test against
  the first gold only. MAB scored exact match on the parsed output alone, so "label: 43" failed there.
  A gold that normalises to "" never matches.
- `boxed_label_accuracy`: the label is read from the LAST `\\boxed{...}`, with nested braces matched, so
  `\\boxed{\\text{3}}` reads as 3. Mem-alpha took the first box with a regex that broke on nesting. MAB
  scored ICL by substring, so gold "3" matched "13". We strip `\\text{}`-style wrappers, quotes and a
  leading "label:", then require string equality. Without a box, the whole answer, cleaned the same way,
  counts only if it is a bare integer.
- `keyword_recall`: a single gold string is split at both ',' and ';'. Mem-alpha split booksum at "," in
  training and at ", " in eval, and matched PerLTQA parts against the un-lowercased prediction. Here
  keywords and prediction are both normalised, and duplicate keywords count once. Matching is a substring
  test, as in the original, so "war" is found in "software".
- `rouge_l`: ROUGE-L F1 on lower-case `\\w+` tokens with our own LCS. `rouge_score` used a stemmer and
  `[a-z0-9]` tokens, so our numbers run slightly lower. No task scores with it by default: Mem-alpha's
  training reward used it for InfBench-Sum. We score that task by keyword recall, as Mem-alpha's eval
  did; MAB used a GPT-4o judge with HELMET prompts.
- `recall_at_5`: MAB mapped each recommended title to the nearest name in `entity2id.json` by edit
  distance, and gold ids to names through the same file. We compare normalised titles instead. They match
  when equal, or when one is a whole-word part of the other. The golds must therefore be titles. The
  containment rule accepts a trailing description ("Heat - a heist classic"), but it also lets a sequel
  match its original ("Toy Story 2" for "Toy Story").
- `llm_judge` needs a model, so the scorer calls the judge itself with `judge_prompt` and
  `parse_judge_verdict`. The prompts follow LongMemEval's per-type rules in our own wording. A verdict is
  the first whole word yes/no. The original marked a reply "yes" when it contained "yes" and not "no" as
  substrings, which failed on words such as "not" and "know".
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable

MetricFunction = Callable[[str, list[str]], float]

JUDGE_METRIC = "llm_judge"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ANSWER_MARK = re.compile(r"answer:", re.IGNORECASE)
_YES_NO_ANSWERS = frozenset({"yes", "no", "noanswer"})
_BOXED = re.compile(r"\\boxed\s*\{")
_COMMAND = re.compile(r"\\[A-Za-z]+\s*\{")
_LABEL_PREFIX = re.compile(r"^label\s*:", re.IGNORECASE)
_QUOTES = "\"'`"
_INTEGER = re.compile(r"[0-9]+")
_KEYWORD_SEPARATOR = re.compile(r"[,;]")
_WORD = re.compile(r"\w+")
_LIST_MARKER = re.compile(r"^\s*(?:\d+\s*[.)]|[-*•])\s+")
_PARENTHESES = re.compile(r"\([^)]*\)")
_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
RECOMMENDATIONS_CUTOFF = 5


# ---------------------------------------------------------------- text helpers


def normalize_answer(text: str) -> str:
    """DrQA/DensePhrases normalisation: lower-case, drop ASCII punctuation and a/an/the, collapse spaces."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def strip_think(text: str) -> str:
    """The answer part of a reply: what follows the reasoning block.

    A reply whose `<think>` was pre-filled in the prompt shows only the closing tag, so the answer is what
    follows the last `</think>`. A `<think>` left open means generation stopped mid-reasoning. There is no
    answer then, so the result is "".
    """
    if THINK_CLOSE in text:
        text = text.rpartition(THINK_CLOSE)[2]
    return "" if THINK_OPEN in text else text.strip()


def parse_output(prediction: str) -> str:
    """MAB's parsed output: the first line after the first "Answer:" (any case), else the first line."""
    mark = _ANSWER_MARK.search(prediction)
    return _first_line(prediction[mark.end() :] if mark else prediction)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _golds(answers: list[str]) -> list[str]:
    """The gold list; a bare string is one answer. No golds at all is a data error, not a score of 0."""
    golds = [answers] if isinstance(answers, str) else list(answers)
    if not golds:
        raise ValueError("no gold answers to score against")
    return golds


def _best_normalized(prediction: str, answers: list[str], pair: Callable[[str, str], float]) -> float:
    """Max of `pair(prediction, gold)`, both normalised, over raw and parsed prediction and golds.

    A gold that normalises to "" is skipped: it would be a substring of everything.
    """
    golds = [g for g in map(normalize_answer, _golds(answers)) if g]
    predictions = {normalize_answer(p) for p in (prediction, parse_output(prediction))}
    return max((pair(p, g) for p in predictions for g in golds), default=0.0)


# ---------------------------------------------------------------- short answers


def substring_em(prediction: str, answers: list[str]) -> float:
    """1.0 if a normalised gold occurs inside the normalised (raw or parsed) prediction."""
    return _best_normalized(prediction, answers, lambda p, g: float(g in p))


def exact_match(prediction: str, answers: list[str]) -> float:
    """1.0 if the normalised (raw or parsed) prediction equals a normalised gold."""
    return _best_normalized(prediction, answers, lambda p, g: float(p == g))


def token_f1(prediction: str, answers: list[str]) -> float:
    """Token-overlap F1 of normalised texts, max over golds and over raw and parsed prediction."""
    return _best_normalized(prediction, answers, _f1)


def _f1(prediction: str, gold: str) -> float:
    # DrQA/HotpotQA rule: a yes/no/noanswer on either side must match exactly, not share tokens.
    if (prediction in _YES_NO_ANSWERS or gold in _YES_NO_ANSWERS) and prediction != gold:
        return 0.0
    pred_tokens, gold_tokens = prediction.split(), gold.split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------- boxed labels


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` whose braces close (nesting allowed), or None."""
    for match in reversed(list(_BOXED.finditer(text))):
        end = _closing_brace(text, match.end() - 1)
        if end is not None:
            return text[match.end() : end]
    return None


def _closing_brace(text: str, open_at: int) -> int | None:
    """Index of the `}` matching the `{` at `open_at`, or None if it never closes."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _clean_label(text: str) -> str:
    """A label as written: without `\\text{...}`-style wrappers, quotes, spaces or a leading "label:"."""
    text = text.strip()
    while (command := _COMMAND.match(text)) and _closing_brace(text, command.end() - 1) == len(text) - 1:
        text = text[command.end() : -1].strip()
    text = _LABEL_PREFIX.sub("", text.strip(_QUOTES).strip())
    return text.strip().strip(_QUOTES).strip().casefold()


def boxed_label_accuracy(prediction: str, answers: list[str]) -> float:
    """1.0 if the label in the last `\\boxed{}` equals a gold label.

    Without a box, the whole answer counts only if it cleans to a bare integer.
    """
    golds = {_clean_label(g) for g in _golds(answers)}
    boxed = last_boxed(prediction)
    label = _clean_label(prediction if boxed is None else boxed)
    if not label or (boxed is None and not _INTEGER.fullmatch(label)):
        return 0.0
    return float(label in golds)


# ---------------------------------------------------------------- long answers


def keywords_of(answers: list[str]) -> list[str]:
    """The normalised gold keywords, each once. A single gold string is split at ',' and ';'."""
    items = _golds(answers)
    if len(items) == 1:
        items = _KEYWORD_SEPARATOR.split(items[0])
    return [k for k in dict.fromkeys(map(normalize_answer, items)) if k]


def keyword_recall(prediction: str, answers: list[str]) -> float:
    """Share of the gold keywords that occur in the prediction (normalised substring test)."""
    keywords = keywords_of(answers)
    text = normalize_answer(prediction)
    return sum(k in text for k in keywords) / len(keywords) if keywords else 0.0


def rouge_l(prediction: str, answers: list[str]) -> float:
    """ROUGE-L F1 on lower-case word tokens, max over golds."""
    tokens = _WORD.findall(prediction.lower())
    return max(_rouge_l_f1(tokens, _WORD.findall(g.lower())) for g in _golds(answers))


def _rouge_l_f1(prediction: list[str], gold: list[str]) -> float:
    lcs = _lcs_length(prediction, gold)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(prediction), lcs / len(gold)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, in O(len(a)·len(b)) time and O(min) memory."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


# ---------------------------------------------------------------- recommendations


def recommendations(prediction: str) -> list[str]:
    """The recommended titles, in order, normalised and without numbering or parentheses (years).

    With list markers ("1.", "2)", "-"), only the marked lines count, which skips any preamble.
    Otherwise the items are the non-empty lines, or the comma-separated parts of a one-line answer.
    """
    lines = [line for line in prediction.splitlines() if line.strip()]
    marked = [line for line in lines if _LIST_MARKER.match(line)]
    items = marked or (lines if len(lines) > 1 else prediction.split(","))
    return [t for t in map(_title, items) if t]


def _title(item: str) -> str:
    return normalize_answer(_PARENTHESES.sub(" ", _LIST_MARKER.sub("", item, count=1)))


def _same_title(a: str, b: str) -> bool:
    """Equal, or one is a whole-word part of the other ("inception" in "inception a heist thriller")."""
    return f" {a} " in f" {b} " or f" {b} " in f" {a} "


def recall_at_5(prediction: str, answers: list[str]) -> float:
    """Share of the gold titles found among the first five recommended titles."""
    golds = [g for g in dict.fromkeys(map(_title, _golds(answers))) if g]
    top = recommendations(prediction)[:RECOMMENDATIONS_CUTOFF]
    found = sum(any(_same_title(g, p) for p in top) for g in golds)
    return found / len(golds) if golds else 0.0


# ---------------------------------------------------------------- LLM judge (LongMemEval style)

_JUDGE_SYSTEM = (
    "You check answers for a memory benchmark. You are shown a question, the expected answer and a "
    "model's response, and you decide whether the response is correct. Reply with a single word: yes or no."
)
_CORRECT_RULE = (
    "Say yes if the response gives the expected answer, an equivalent answer, or all the intermediate "
    "steps that lead to it. Say no if it gives another answer or only part of what the expected answer "
    "requires."
)
_JUDGE_RULES = {
    "default": _CORRECT_RULE,
    "temporal-reasoning": _CORRECT_RULE
    + (
        " Do not penalise an off-by-one count of days, weeks or months: a response of 18 days where 19 are "
        "expected is still correct."
    ),
    "knowledge-update": (
        "The expected answer is the most recent value of something that changed over time. Say yes if the "
        "response gives that updated value, even when it also mentions older information. Say no if it "
        "gives only an outdated value or another answer."
    ),
    "single-session-preference": (
        "The expected answer is a rubric describing a good personalised response. Say yes if the response "
        "recalls the user's personal information and uses it correctly; it need not cover every point "
        "of the rubric. Say no if it ignores or misuses that information."
    ),
    "abstention": (
        "This question cannot be answered from the conversation history; the expected answer explains "
        "why. Say yes if the response says it cannot answer, or that the information was never given. "
        "Say no if it answers as if it knew."
    ),
}
_GOLD_LABELS = {
    "single-session-preference": "Rubric",
    "abstention": "Why it cannot be answered",
}
JUDGE_QUESTION_TYPES = (
    "single-session-user",
    "single-session-assistant",
    "multi-session",
    "temporal-reasoning",
    "knowledge-update",
    "single-session-preference",
)


def judge_variant(question_type: str | None, question_id: str = "") -> str:
    """Which judging rule applies: "abstention" for LongMemEval's `_abs` ids, else the question type."""
    if "_abs" in question_id:
        return "abstention"
    if question_type is None:
        return "default"
    if question_type not in JUDGE_QUESTION_TYPES:
        raise ValueError(f"no judge rule for question type {question_type!r}; known: {JUDGE_QUESTION_TYPES}")
    return question_type if question_type in _JUDGE_RULES else "default"


def judge_prompt(
    question: str, answers: list[str], prediction: str, question_type: str | None, question_id: str = ""
) -> list[dict[str, str]]:
    """Chat messages asking a judge whether `prediction` answers `question`; the reply is yes or no.

    `question_type` is a LongMemEval type (None: the plain correctness rule). A `question_id` containing
    "_abs" marks an abstention question, whatever its type.
    """
    variant = judge_variant(question_type, question_id)
    golds = _golds(answers)
    gold = golds[0] if len(golds) == 1 else "any one of:\n" + "\n".join(f"- {g}" for g in golds)
    user = (
        f"{_JUDGE_RULES[variant]}\n\n"
        f"Question: {question}\n\n"
        f"{_GOLD_LABELS.get(variant, 'Expected answer')}: {gold}\n\n"
        f"Model response: {strip_think(prediction)}\n\n"
        "Is the response correct? Reply yes or no."
    )
    return [{"role": "system", "content": _JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_judge_verdict(reply: str) -> float:
    """1.0 if the judge's first yes/no word (after any think block) is yes; 0.0 for no or no verdict."""
    verdict = _VERDICT.search(strip_think(reply))
    return float(verdict is not None and verdict.group(1).lower() == "yes")


# ---------------------------------------------------------------- dispatch

METRIC_FUNCTIONS: dict[str, MetricFunction] = {
    "substring_em": substring_em,
    "exact_match": exact_match,
    "token_f1": token_f1,
    "boxed_label_accuracy": boxed_label_accuracy,
    "keyword_recall": keyword_recall,
    "rouge_l": rouge_l,
    "recall_at_5": recall_at_5,
}


def score(metric: str, prediction: str, answers: list[str]) -> float:
    """The score in [0, 1] of a reader reply (its think block stripped first) under `metric`."""
    if metric == JUDGE_METRIC:
        raise ValueError(
            f"{JUDGE_METRIC} needs a judge model: the scorer builds judge_prompt() and reads the reply "
            "with parse_judge_verdict()"
        )
    if metric not in METRIC_FUNCTIONS:
        raise ValueError(f"unknown metric {metric!r}; known: {[*METRIC_FUNCTIONS, JUDGE_METRIC]}")
    return METRIC_FUNCTIONS[metric](strip_think(prediction), answers)
