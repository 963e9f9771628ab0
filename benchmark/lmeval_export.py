"""Export the long-context baseline as lm-eval tasks, so any model lm-eval can drive is scored on the same
questions, prompt and metrics (`memalpha export lm-eval`).

Each question becomes one lm-eval doc holding the two reader messages our scorer would send for the
`long-context` agent's memory: `system` (the versioned reader template with the tail of the input
that fits, as core memory) and `user` (the task's query prompt and the question). The memory comes
from `LongContextAgent` and the messages from `ReaderPrompt.build` under the same budget rule, so
both paths share that code. A task's score is ours: the mean over instances of each instance's
question mean; a competency group is the plain mean of its tasks, as ours. lm-eval averages any group
over its leaf tasks, so the suite group is the plain mean of all its tasks; our overall score (the
mean of the competencies) is the mean of the competency rows. LLM-judged tasks are skipped: lm-eval
has no judge model here.

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

from tasks.errors import TaskError
from tasks.registry import get_task
from tasks.tokenization import get_counter

from .agents.base import InstanceInfo
from .agents.baselines import LongContextAgent
from .metrics import JUDGE_METRIC, score

PREFIX = "memalpha"
METRIC_KEY = "score"
DEFAULT_BUDGET = 30_000
DEFAULT_MAX_TOKENS = 2048
UTILS_SOURCE = '''"""lm-eval hooks of the memalpha-bench export: the metrics come from benchmark.metrics."""

from benchmark.lmeval_export import instance_mean, process_results

__all__ = ["instance_mean", "process_results"]
'''


# ---------------------------------------------------------------- the hooks lm-eval calls (through utils.py)


def process_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, list[Any]]:
    """The doc's score under its task's metric, tagged with its instance for `instance_mean`."""
    return {METRIC_KEY: [doc["instance_id"], score(doc["metric"], results[0], doc["answers"])]}


def instance_mean(items: Sequence[Sequence[Any]]) -> float:
    """Mean over instances of each instance's mean question score (the scorer's task score)."""
    by_instance: dict[str, list[float]] = {}
    for instance_id, value in items:
        by_instance.setdefault(instance_id, []).append(float(value))
    return statistics.fmean(statistics.fmean(v) for v in by_instance.values()) if by_instance else 0.0


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
    """One doc per question of the task split (its instances up to the limit), and the task's sha256."""
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
            "generation_kwargs": {
                "until": [],
                "max_gen_toks": settings.max_tokens,
                "do_sample": False,
                "temperature": 0.0,
            },
            "process_results": Hook("process_results"),
            "metric_list": [{"metric": METRIC_KEY, "aggregation": Hook("instance_mean"), "higher_is_better": True}],
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
            },
        }
    )


def group_yaml(name: str, members: Sequence[str], metadata: dict[str, Any]) -> str:
    return _yaml(
        {
            "group": name,
            "task": list(members),
            "aggregate_metric_list": [{"metric": METRIC_KEY, "aggregation": "mean", "weight_by_size": False}],
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
    for task, split in members:
        spec = get_task(task)
        if spec.metric == JUDGE_METRIC:
            result.skipped[task] = "scored by an LLM judge, which lm-eval has no model for here; use `memalpha eval`"
            continue
        name = lmeval_name(task, split)
        docs, sha = task_docs(data_dir, task, split, settings, agent)
        data_file = out_dir / "data" / f"{name}.jsonl"
        with open(data_file, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs)
        config = task_yaml(name, task, split, data_file, sha, settings, agent.tokens)
        (out_dir / f"{name}.yaml").write_text(config, "utf-8")
        result.tasks[name] = len(docs)
        by_competency.setdefault(spec.competency, []).append(name)
    if not result.tasks:
        raise TaskError(f"nothing to export: {', '.join(f'{t} ({why})' for t, why in result.skipped.items())}")
    competency_groups = []
    for competency, names in by_competency.items():
        competency_groups.append(lmeval_name(group, competency))
        (out_dir / f"{competency_groups[-1]}.yaml").write_text(
            group_yaml(competency_groups[-1], names, {"competency": competency}), "utf-8"
        )
    (out_dir / f"{result.group}.yaml").write_text(
        group_yaml(result.group, competency_groups, {"skipped": dict(result.skipped)}), "utf-8"
    )
    (out_dir / "utils.py").write_text(UTILS_SOURCE, "utf-8")
    (out_dir / "README.md").write_text(_readme(result), "utf-8")
    return result


def _readme(result: ExportResult) -> str:
    tasks = "\n".join(f"- `{name}`: {n} questions" for name, n in result.tasks.items())
    skipped = "\n".join(f"- `{task}`: {why}" for task, why in result.skipped.items()) or "- none"
    return f"""# memalpha-bench tasks for lm-eval: the long-context baseline

Written by `memalpha export lm-eval`. Each question's prompt is the reader prompt our scorer sends for
the `long-context` agent: the tail of the input that fits the budget as core memory, then the question.
The data files are referenced by absolute path: export again after moving this folder. `utils.py`
imports `benchmark`, so run lm-eval where `memalpha-bench` is installed.

Group `{result.group}`, with one sub-group per competency. A task's score is the mean over
instances of each instance's question mean, and a competency row the mean of its tasks, as in
`scores.json`. lm-eval averages the suite row over all tasks; the overall score of `memalpha score`
is the mean of the competency rows instead.

Tasks:

{tasks}

Skipped:

{skipped}

Run it against any OpenAI-compatible server (the scorer's reader runs Qwen3 with thinking off: do the
same on the server side, or with `enable_thinking=False` in `--model_args` for lm-eval's `hf` and
`vllm` models; a think block in a reply is stripped before scoring either way):

```
OPENAI_API_KEY=none lm_eval --model local-chat-completions \\
  --model_args model=Qwen/Qwen3-32B,base_url=http://127.0.0.1:8000/v1/chat/completions,num_concurrent=8 \\
  --apply_chat_template --include_path {result.out_dir} --tasks {result.group} --output_path results/
```
"""
