"""Export the long-context baseline as lm-eval tasks, so any model lm-eval can drive is scored on the same
questions, prompt and metrics (`memalpha export lm-eval`).

Each question becomes one lm-eval doc holding the two reader messages our scorer would send for the
`long-context` agent's memory: `system` (the versioned reader template with the tail of the input
that fits, as core memory) and `user` (the task's query prompt and the question). The memory comes
from `LongContextAgent` and the messages from `ReaderPrompt.build` under the same budget rule, so
both paths share that code. A task's `score` is ours: the mean over instances of each instance's
question mean; a competency group's `score` is the plain mean of its tasks, as ours. The suite group
reports `overall`, our overall score (the mean of the competencies): lm-eval averages a group over
its leaf tasks, not over its sub-groups, so each task also reports `overall` as its share, its score
times T / (C · n_c) (T tasks, C competencies, n_c tasks in its competency), whose plain mean over the
tasks is the mean of the competency means. LLM-judged tasks are skipped: lm-eval has no judge model
here.

Generation stops at the end of the model's turn. lm-eval sends the task's `until` list as `stop`, and
an empty list makes some servers fail (`transformers serve` answers 500), so `until` holds the chat
end-of-turn marker `<|im_end|>`, which a server never returns in an answer's text: a stop that every
server tested accepts and that never cuts an answer. `chat_template_kwargs` (e.g. Qwen3's
`{"enable_thinking": false}`) goes into `generation_kwargs`, which lm-eval's API models send as a
request field.

The output folder is read by `lm_eval --include_path DIR`: `utils.py` (re-exporting the two
functions below), one YAML and one JSON-lines file per task, one YAML per group, a README.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasks.atomic import replace_file
from tasks.errors import TaskError
from tasks.registry import get_task
from tasks.tokenization import get_counter

from .agents.base import InstanceInfo
from .agents.baselines import LongContextAgent
from .metrics import JUDGE_METRIC, score

PREFIX = "memalpha"
METRIC_KEY = "score"
OVERALL_KEY = "overall"
END_OF_TURN = "<|im_end|>"
DEFAULT_BUDGET = 30_000
DEFAULT_MAX_TOKENS = 2048
UTILS_SOURCE = '''"""lm-eval hooks of the memalpha-bench export: the metrics come from benchmark.metrics."""

from benchmark.lmeval_export import instance_mean, overall_share, process_results

__all__ = ["instance_mean", "overall_share", "process_results"]
'''


# ---------------------------------------------------------------- the hooks lm-eval calls (through utils.py)


def process_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, list[Any]]:
    """The doc's score under its task's metric, tagged with its instance for `instance_mean` (and with
    its task's weight in the overall score for `overall_share`)."""
    value = score(doc["metric"], results[0], doc["answers"])
    return {
        METRIC_KEY: [doc["instance_id"], value],
        OVERALL_KEY: [doc["instance_id"], value, doc["overall_weight"]],
    }


def instance_mean(items: Sequence[Sequence[Any]]) -> float:
    """Mean over instances of each instance's mean question score (the scorer's task score)."""
    by_instance: dict[str, list[float]] = {}
    for instance_id, value, *_ in items:
        by_instance.setdefault(instance_id, []).append(float(value))
    return statistics.fmean(statistics.fmean(v) for v in by_instance.values()) if by_instance else 0.0


def overall_share(items: Sequence[Sequence[Any]]) -> float:
    """A task's share of the overall score: its score times its weight T / (C · n_c); the plain mean
    of the shares over the suite's tasks is the mean over competencies of their task means."""
    return instance_mean(items) * float(items[0][2]) if items else 0.0


# ---------------------------------------------------------------- export


@dataclass
class ExportResult:
    out_dir: Path
    group: str
    tasks: dict[str, int] = field(default_factory=dict)  # lm-eval task name -> docs written
    skipped: dict[str, str] = field(default_factory=dict)  # our task name -> why


@dataclass(frozen=True)
class ExportSettings:
    """What shapes the prompts: the scorer's token counter and budget, the long-context memory size."""

    tokenizer: str = "qwen3"
    budget: int = DEFAULT_BUDGET
    memory_tokens: int | None = None  # None: the long-context agent's default (28000)
    max_tokens: int = DEFAULT_MAX_TOKENS
    limit: int | None = None  # instances per task
    chat_template_kwargs: dict[str, Any] | None = None  # sent as a request field by lm-eval's API models


def lmeval_name(*parts: str) -> str:
    """An lm-eval task or group name: `memalpha_` and the parts, with '-' as '_'."""
    return "_".join((PREFIX, *parts)).replace("-", "_")


def long_context_agent(settings: ExportSettings) -> LongContextAgent:
    options = {"tokenizer": settings.tokenizer}
    if settings.memory_tokens is not None:
        options["tokens"] = str(settings.memory_tokens)
    return LongContextAgent(**options)


def task_docs(
    data_dir: Path, task: str, split: str, settings: ExportSettings, agent: LongContextAgent
) -> tuple[list[dict[str, Any]], str]:
    """One doc per question of the task split (its instances up to the limit), and the task's sha256.
    Each doc's `overall_weight` is filled in by `export_lmeval`, once the suite's shape is known."""
    from .prompting import ReaderPrompt  # jinja2, and the scorer's numpy and scipy: not for `memalpha --help`
    from .scoring import load_tasks

    spec = get_task(task)
    built = load_tasks(data_dir, [task])[task]  # the scorer's loading, with its checks
    rows = [row for instance_id, row in built.rows.items() if built.split_of[instance_id] == split]
    if not rows:
        present = ", ".join(sorted(set(built.split_of.values())))
        raise TaskError(f"{data_dir / task}: no instances in split {split!r} (it has {present})")
    rows = rows[: settings.limit] if settings.limit else rows
    prompt, counter = ReaderPrompt(), get_counter(settings.tokenizer)
    docs = []
    for row in rows:
        session = agent.new_session(InstanceInfo(row["instance_id"], task, spec.competency, len(row["chunks"])))
        for chunk in row["chunks"]:
            session.observe(chunk)
        memory = session.memory()
        for q in row["questions"]:
            messages = prompt.build(
                memory,
                (),
                (),
                q["question"],
                spec.query_prompt,
                counter=counter,
                budget=settings.budget,
                entry_tokens=((), ()),
            ).messages
            (_, system), (_, user) = messages
            docs.append(
                {
                    "task": task,
                    "instance_id": row["instance_id"],
                    "question_id": q["question_id"],
                    "question": q["question"],
                    "answers": list(q["answers"]),
                    "metric": spec.metric,
                    "system": system,
                    "user": user,
                    "overall_weight": None,
                }
            )
    return docs, built.sha256


class Hook(str):
    """The name of a function in the export's utils.py, written as `!function utils.NAME`."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Hook, lambda dumper, name: dumper.represent_scalar("!function", f"utils.{name}"))


def _yaml(config: dict[str, Any]) -> str:
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


def task_yaml(
    name: str, task: str, split: str, data_file: Path, task_sha256: str, settings: ExportSettings, memory_tokens: int
) -> str:
    from .prompting import TEMPLATE_VERSION, ReaderPrompt

    spec = get_task(task)
    return _yaml(
        {
            "task": name,
            "task_alias": f"{task} ({split}, {spec.metric})",
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
            "test_split": "test",
            "output_type": "generate_until",
            "description": "system",  # a doc field: lm-eval sends it as the system message
            "doc_to_text": "user",
            "doc_to_target": "{{answers[0]}}",
            "generation_kwargs": generation_kwargs(settings),
            "process_results": Hook("process_results"),
            "metric_list": [
                {"metric": METRIC_KEY, "aggregation": Hook("instance_mean"), "higher_is_better": True},
                {"metric": OVERALL_KEY, "aggregation": Hook("overall_share"), "higher_is_better": True},
            ],
            "metadata": {
                "version": spec.version,
                "memalpha_task": task,
                "split": split,
                "metric": spec.metric,
                "competency": spec.competency,
                "task_sha256": task_sha256,
                "reader_template": TEMPLATE_VERSION,
                "template_sha256": ReaderPrompt().sha256,
                "tokenizer": settings.tokenizer,
                "budget": settings.budget,
                "memory_tokens": memory_tokens,
                "limit": settings.limit,
                "chat_template_kwargs": settings.chat_template_kwargs,
            },
        }
    )


def generation_kwargs(settings: ExportSettings) -> dict[str, Any]:
    """Greedy, up to max_tokens, stopping at the end of the turn; the template switches if any."""
    kwargs: dict[str, Any] = {
        "until": [END_OF_TURN],
        "max_gen_toks": settings.max_tokens,
        "do_sample": False,
        "temperature": 0.0,
    }
    if settings.chat_template_kwargs:
        kwargs["chat_template_kwargs"] = dict(settings.chat_template_kwargs)
    return kwargs


def group_yaml(name: str, members: Sequence[str], metric: str, metadata: dict[str, Any]) -> str:
    """A group reporting the plain mean of `metric` over its leaf tasks."""
    return _yaml(
        {
            "group": name,
            "task": list(members),
            "aggregate_metric_list": [{"metric": metric, "aggregation": "mean", "weight_by_size": False}],
            "metadata": {"version": 1.0, **metadata},
        }
    )


def export_lmeval(
    data_dir: str | Path,
    members: Sequence[tuple[str, str]],
    out_dir: str | Path,
    *,
    group: str,
    settings: ExportSettings | None = None,
) -> ExportResult:
    """Write lm-eval tasks for (task, split) `members` built in `data_dir`, grouped as `memalpha_<group>`."""
    data_dir, out_dir, settings = Path(data_dir), Path(out_dir), settings or ExportSettings()
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    agent = long_context_agent(settings)
    result = ExportResult(out_dir, lmeval_name(group))
    by_competency: dict[str, list[str]] = {}
    task_docs_of: dict[str, tuple[str, str, list[dict[str, Any]], str]] = {}
    for task, split in members:
        spec = get_task(task)
        if spec.metric == JUDGE_METRIC:
            result.skipped[task] = "scored by an LLM judge, which lm-eval has no model for here; use `memalpha eval`"
            continue
        name = lmeval_name(task, split)
        docs, sha = task_docs(data_dir, task, split, settings, agent)
        task_docs_of[name] = (task, split, docs, sha)
        by_competency.setdefault(spec.competency, []).append(name)
    if not task_docs_of:
        raise TaskError(f"nothing to export: {', '.join(f'{t} ({why})' for t, why in result.skipped.items())}")
    weights = overall_weights(by_competency)
    for name, (task, split, docs, sha) in task_docs_of.items():
        for doc in docs:
            doc["overall_weight"] = weights[name]
        data_file = out_dir / "data" / f"{name}.jsonl"
        replace_file(data_file, (json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs))
        config = task_yaml(name, task, split, data_file, sha, settings, agent.tokens)
        replace_file(out_dir / f"{name}.yaml", config)
        result.tasks[name] = len(docs)
    competency_groups = []
    for competency, names in by_competency.items():
        competency_groups.append(lmeval_name(group, competency))
        replace_file(
            out_dir / f"{competency_groups[-1]}.yaml",
            group_yaml(competency_groups[-1], names, METRIC_KEY, {"competency": competency}),
        )
    replace_file(
        out_dir / f"{result.group}.yaml",
        group_yaml(result.group, competency_groups, OVERALL_KEY, {"skipped": dict(result.skipped)}),
    )
    replace_file(out_dir / "utils.py", UTILS_SOURCE)
    replace_file(out_dir / "README.md", _readme(result, settings))
    return result


def overall_weights(by_competency: dict[str, list[str]]) -> dict[str, float]:
    """Each task's weight T / (C · n_c) in `overall_share` (see the module docstring)."""
    total = sum(len(names) for names in by_competency.values())
    return {name: total / (len(by_competency) * len(names)) for names in by_competency.values() for name in names}


def _readme(result: ExportResult, settings: ExportSettings) -> str:
    chat_template_kwargs = json.dumps(settings.chat_template_kwargs) if settings.chat_template_kwargs else "none"
    tasks = "\n".join(f"- `{name}`: {n} questions" for name, n in result.tasks.items())
    skipped = "\n".join(f"- `{task}`: {why}" for task, why in result.skipped.items()) or "- none"
    return f"""# memalpha-bench tasks for lm-eval: the long-context baseline

Written by `memalpha export lm-eval`. Each question's prompt is the reader prompt our scorer sends for
the `long-context` agent: the tail of the input that fits the budget as core memory, then the question.
The data files are referenced by absolute path: export again after moving this folder. `utils.py`
imports `benchmark`, so run lm-eval where `memalpha-bench` is installed.

Group `{result.group}`, with one sub-group per competency. A task's `score` is the mean over
instances of each instance's question mean, and a competency row's `score` the mean of its tasks, as
in `scores.json`. The suite row's `overall` is our overall score, the mean of the competency rows
(of the tasks exported here). lm-eval averages a group over its leaf tasks, so each task also reports
`overall` as its share of that mean (its score times T / (C · n_c): T tasks, C competencies, n_c tasks
in its competency); a task's own `overall` value is not a score.

Tasks:

{tasks}

Skipped:

{skipped}

Run it against any OpenAI-compatible server. The scorer's reader runs Qwen3 with thinking off: export
with `--chat-template-kwargs '{{"enable_thinking": false}}'` for a vLLM, SGLang or `transformers serve`
endpoint (the OpenAI API rejects that field), or pass `enable_thinking=False` in `--model_args` for
lm-eval's `hf` and `vllm` models; a think block in a reply is stripped before scoring either way.
Chat template switches in this export: {chat_template_kwargs}.

```
OPENAI_API_KEY=none lm_eval --model local-chat-completions \\
  --model_args model=Qwen/Qwen3-32B,base_url=http://127.0.0.1:8000/v1/chat/completions,num_concurrent=8 \\
  --apply_chat_template --include_path {result.out_dir} --tasks {result.group} --output_path results/
```
"""
