"""`benchmark.scoring` in process, where the end-to-end runs cannot look: `score_run` with in-memory task
data and scripted readers (its progress bars, phases, windows, failures of both phases, what it writes and
records), the scorer record key by key and the expected record of a named setting, what each profile's
retrieval searches with, the warnings' text, and the reader and judge calls' windows and callbacks."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from test_scoring_pipeline import RecordingReader, prepared, task_data

from benchmark import scoring
from benchmark.failed_questions import QuestionsFailed
from benchmark.input_limits import InputLimits, InputTooLarge
from benchmark.memory import Memory, MemoryEntry, MemoryRecord, write_memories
from benchmark.profiles import AVERAGES, ScorerConfig, get_profile
from benchmark.prompting import ReaderPrompt
from benchmark.readers.base import ReaderResponse, RequestsFailed
from benchmark.retrieval import MemoryIndex
from benchmark.scoring import (
    ScoreResult,
    TaskData,
    answer,
    expected_scorer_record,
    judge,
    prepare,
    run_warnings,
    score_run,
    scorer_record,
    write_outputs,
)
from benchmark.timings import PHASES, Timings
from tasks.errors import TaskError
from tasks.registry import get_task
from tasks.tokenization import get_counter

COUNTER = get_counter("simple")
GOLDS = {  # question -> gold; the scripted reader answers "It is <gold>."
    "Which river flows through Zürich?": "Limmat",
    "Which lake feeds the river?": "Lake Zurich",
    "How long is the river?": "36 km",
    "Where does she live now?": "Oslo",
    "What is her cat called?": "Tom",
    "Which city did she visit last?": "Bergen",
}
SHAPE = {  # task -> instance -> question ids; longmemeval_s is judged under every profile; s2 has no questions
    "squad": {"s1": ["q1", "q2", "q3"], "s2": []},
    "longmemeval_s": {"l1": ["l1a", "l1b", "l1c"]},
}
MEMORY = Memory(
    "She lives in Oslo.",
    tuple(MemoryEntry(f"s{i}", t) for i, t in enumerate(["The Limmat flows through Zürich.", "Lake Zurich feeds it."])),
    (MemoryEntry("e0", "She visited Bergen.", "2024-03-01"), MemoryEntry("e1", "Her cat Tom slept.", "2024-03-02")),
)


class Scripted:
    """A reader answering each request from its last message (`reply`; None fails that request), recording
    the size of every call."""

    def __init__(self, backend: str, reply) -> None:
        self.backend, self.reply, self.calls = backend, reply, []

    def describe(self) -> dict:
        return {"backend": self.backend, "model": "m"}

    def generate(self, requests, on_result=None):
        self.calls.append(len(requests))
        out, failures = [], {}
        for i, request in enumerate(requests):
            text = self.reply(request.messages[-1][1])
            if text is None:
                failures[i] = "scripted failure"
                continue
            out.append(ReaderResponse.from_raw(text, 10, 2))
            if on_result is not None:
                on_result(i, out[-1])
        if failures:
            raise RequestsFailed(failures, len(requests))
        return out


def reader(fail: tuple[str, ...] = ()) -> Scripted:
    """Answers every question with its gold (and says yes as the judge, where it is the judge too)."""
    return Scripted(
        "scripted", lambda user: None if user in fail else f"It is {GOLDS[user]}." if user in GOLDS else "yes"
    )


def judge_reader(fail: str | None = None) -> Scripted:
    return Scripted("judge", lambda user: None if fail and fail in user else "yes")


class PhaseLog(Timings):
    """Timings that also list the phases in the order they were entered."""

    def __init__(self) -> None:
        super().__init__()
        self.entered: list[str] = []

    def phase(self, name: str):
        self.entered.append(name)
        return super().phase(name)


def run_folder(tmp_path, monkeypatch, extra: tuple[MemoryRecord, ...] = (), shape=SHAPE, name: str = "run"):
    """A run's memories.jsonl for `shape`, its task data served from memory instead of built task folders."""
    run = tmp_path / name
    run.mkdir()
    records = [MemoryRecord(iid, task, MEMORY) for task, instances in shape.items() for iid in instances]
    write_memories(run / "memories.jsonl", [*records, *extra])
    ids = [qid for instances in SHAPE.values() for qids in instances.values() for qid in qids]
    questions = dict(zip(GOLDS, ids, strict=True))  # GOLDS' questions in SHAPE's order
    tasks = {}
    for task, instances in shape.items():
        rows = {
            iid: {
                "instance_id": iid,
                "questions": [
                    {"question_id": qid, "question": q, "answers": [GOLDS[q]], "question_type": "single-session-user"}
                    for q, qid in questions.items()
                    if qid in qids
                ],
            }
            for iid, qids in instances.items()
        }
        tasks[task] = TaskData(rows, "0" * 64, dict.fromkeys(rows, "test"), {"origin": "raw"})
    monkeypatch.setattr(scoring, "load_tasks", lambda data_dir, names: {name: tasks[name] for name in names})
    return run


def test_a_run_shows_both_progress_bars_asks_in_windows_and_times_each_phase(tmp_path, monkeypatch, capsys):
    run = run_folder(tmp_path, monkeypatch)
    monkeypatch.setattr(scoring, "Timings", PhaseLog)
    asked, judging = reader(), judge_reader()
    result = score_run(run, tmp_path, asked, counter=COUNTER, judge_reader=judging, window=2)
    err = capsys.readouterr().err
    assert re.search(r"reader: 100%\|[^|]*\| 6/6 \[[^\]]*(q/s|s/q)\]", err)
    assert re.search(r"judge: 100%\|[^|]*\| 3/3 \[[^\]]*(q/s|s/q)\]", err)
    assert asked.calls == [2, 2, 2] and judging.calls == [2, 1]
    prompts = "retrieval and prompts"
    assert result.timings.entered == ["load", prompts, "reader", prompts, prompts, prompts, "judge", "metrics"]
    assert list(result.timings.phases) == list(PHASES)
    assert [it.score for it in result.items] == [1.0] * 6
    assert [r.instance_id for r in result.records] == ["s1", "s2", "l1"]
    tasks = ["longmemeval_s", "squad"]
    assert result.scores["scorer"] == expected_scorer_record(asked, judging, tasks, COUNTER)
    assert result.scores["scorer"]["judge"]["backend"] == "judge"
    assert result.scores["warnings"] == []


def test_a_quiet_run_prints_nothing_and_without_judged_tasks_records_no_judge(tmp_path, monkeypatch, capsys):
    judging = judge_reader()
    score_run(
        run_folder(tmp_path, monkeypatch),
        tmp_path,
        reader(),
        counter=COUNTER,
        judge_reader=judging,
        show_progress=False,
    )
    assert capsys.readouterr().err == "" and judging.calls == [3]
    run = run_folder(tmp_path, monkeypatch, shape={"squad": SHAPE["squad"]}, name="squad")
    result = score_run(run, tmp_path, reader(), counter=COUNTER, judge_reader=judging, show_progress=False)
    assert result.scores["scorer"]["judge"] is None and judging.calls == [3]


def test_what_a_run_writes_keeps_its_text_and_sorts_its_keys(tmp_path, monkeypatch):
    run = run_folder(tmp_path, monkeypatch)
    score_run(run, tmp_path, reader(), counter=COUNTER, show_progress=False)
    lines = (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert '"question": "Which river flows through Zürich?"' in lines[0]  # not \u-escaped
    first = json.loads(lines[0])
    assert list(first) == sorted(first)
    assert set(first) == {
        *("instance_id", "task", "question_id", "question", "prediction", "answers", "score", "retrieved"),
        *("prompt_tokens", "completion_tokens", "core_truncated", "profile"),
    }
    assert first["core_truncated"] is False and first["prediction"] == "It is Limmat."
    scores = json.loads((run / "scores.json").read_text(encoding="utf-8"))
    assert scores["tasks"]["squad"]["questions"] == 3 and scores["scorer"]["judge"]["backend"] == "scripted"
    size = sum(COUNTER.count_many(MEMORY.texts()))  # s2, without questions, is counted too
    assert scores["tasks"]["squad"]["memory_tokens_mean"] == size > 0


def test_scores_that_break_their_format_are_refused_naming_the_file(tmp_path, monkeypatch):
    run = run_folder(tmp_path, monkeypatch)
    result = score_run(run, tmp_path, reader(), counter=COUNTER, show_progress=False)
    broken = ScoreResult({**result.scores, "task_hashes": {"squad": "zz"}}, result.items, result.records)
    with pytest.raises(TaskError, match=re.escape(f"{run / 'scores.json'}: 1 problem(s)")):
        write_outputs(run, broken, reader())


def test_a_named_setting_is_what_its_expected_record_says(tmp_path, monkeypatch):
    run = run_folder(tmp_path, monkeypatch)
    template = tmp_path / "mine.jinja"
    template.write_text(
        "{% block system %}{{ core }}{% for e in semantic %}\n- {{ e.content }}{% endfor %}{% endblock %}"
        "{% block user %}{{ question }}{% endblock %}",
        encoding="utf-8",
    )
    config = ScorerConfig(top_k=1, budget_tokens=5000)
    asked, judging = reader(), judge_reader()
    setting = {"profile": "memalpha-paper", "template_file": template, "questions_per_instance": 1}
    result = score_run(run, tmp_path, asked, counter=COUNTER, config=config, judge_reader=judging, **setting)
    expected = expected_scorer_record(asked, judging, ["squad", "longmemeval_s"], COUNTER, config=config, **setting)
    assert result.scores["scorer"] == expected
    assert expected != expected_scorer_record(asked, judging, ["squad", "longmemeval_s"], COUNTER)
    assert expected["profile"] == "memalpha-paper@1" and expected["questions_per_instance"] == 1
    assert expected["retriever"]["top_k"] == 1 and expected["reader"]["sampling"] == config.sampling.as_dict()
    assert expected["template"]["name"] == "reader_file:mine.jinja" and expected["judge"]["backend"] == "judge"
    assert [it.question["question_id"] for it in result.items] == ["q1", "l1a"]
    assert all(len(it.retrieved["semantic"]) == 1 for it in result.items)


def test_the_expected_judge_is_the_reader_unless_named_and_only_for_judged_tasks():
    asked, judging = reader(), judge_reader()
    assert expected_scorer_record(asked, None, ["longmemeval_s"], COUNTER)["judge"]["backend"] == "scripted"
    assert expected_scorer_record(asked, judging, ["longmemeval_s"], COUNTER)["judge"]["backend"] == "judge"
    assert expected_scorer_record(asked, judging, ["squad"], COUNTER)["judge"] is None


def test_the_scorer_record_key_by_key():
    profile, config = get_profile("v1"), ScorerConfig(top_k=3, budget_tokens=900)
    prompt, asked, judging = ReaderPrompt.for_profile(profile), reader(), judge_reader()
    record = scorer_record(config, prompt, asked, judging, COUNTER, "v1", ["squad", "longmemeval_s"], 2)
    assert record == {
        "questions_per_instance": 2,
        "version": scoring.SCORER_VERSION,
        "profile": profile.id,
        "rules": profile.describe(),
        "retriever": {**profile.retrieval.describe(), "top_k": 3},
        "reader": {"backend": "scripted", "model": "m", "sampling": config.sampling.as_dict()},
        "judge": {"backend": "judge", "model": "m", "sampling": config.judge_sampling.as_dict()},
        "budget": {"tokens": 900, "counter": COUNTER.describe(), **profile.budget.describe()},
        "template": prompt.describe(),
        "metrics": {"longmemeval_s": "llm_judge", "squad": "substring_em"},
        "aggregation": AVERAGES["mean_of_competencies"],
    }
    unlimited = scorer_record(config, prompt, asked, None, COUNTER, "v1", ["squad"])
    assert "questions_per_instance" not in unlimited and unlimited["judge"] is None


def test_failures_of_the_reader_and_the_judge_are_listed_together(tmp_path, monkeypatch):
    run = run_folder(tmp_path, monkeypatch)
    asked = reader(fail=("Which lake feeds the river?", "Where does she live now?"))
    with pytest.raises(QuestionsFailed) as raised:
        score_run(run, tmp_path, asked, counter=COUNTER, judge_reader=judge_reader("her cat"), show_progress=False)
    message = str(raised.value)
    assert message.startswith("3 of 6 questions got no usable answer")
    assert [(f.question_id, f.phase) for f in raised.value.failures] == [
        ("q2", "reader"),
        ("l1a", "reader"),
        ("l1b", "judge"),
    ]


def test_the_input_limits_reach_the_memories_file(tmp_path, monkeypatch):
    run = run_folder(tmp_path, monkeypatch)
    with pytest.raises(InputTooLarge, match="memories_bytes"):
        score_run(run, tmp_path, reader(), counter=COUNTER, limits=InputLimits(memories_bytes=100))


def test_an_unknown_instance_is_named_with_the_memories_file(tmp_path, monkeypatch):
    run = run_folder(tmp_path, monkeypatch, extra=(MemoryRecord("nope", "squad", MEMORY),))
    with pytest.raises(TaskError) as raised:
        score_run(run, tmp_path, reader(), counter=COUNTER)
    assert str(raised.value) == f"{run / 'memories.jsonl'}: instance ids not in the task data: squad/nope"


def test_a_task_built_without_its_keyword_step_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(scoring, "load_built", lambda data_dir, name: ({}, {"sha256": "0" * 64}))
    monkeypatch.setattr(scoring, "skipped_required_step", lambda manifest: True)
    with pytest.raises(TaskError) as raised:
        scoring.load_tasks(tmp_path, ["booksum"])
    assert str(raised.value) == (
        f"{tmp_path / 'booksum'}: built without keyword extraction, so its golds are whole summaries and keyword "
        "recall would be meaningless; rebuild it with an LLM configured for the build"
    )


def test_the_budget_floor_warning_counts_the_questions_below_it():
    over = [SimpleNamespace(over_floor=flag) for flag in (True, False, True)]
    paper = get_profile("memalpha-paper")
    assert run_warnings(paper, {}, over) == [
        "2 question(s) fitted the memalpha-paper@1 budget only below k = 1, where the original raised; they were "
        "scored with fewer entries or a cut core memory (predictions: core_truncated)"
    ]
    assert run_warnings(paper, {}, over[1:2]) == []
    assert run_warnings(get_profile("v1"), {}, over) == []  # no floor to go below


LABELS = [  # a label task's memory: the query prompt's words, the task's name and the sentence's own words
    "pubmed_rct pubmed_rct",
    "the label of a sentence is a single number",
    "patients received aspirin daily in the trial",
    "retrieved memories hold examples with their labels",
    "aspirin lowers fever",
    "the boxed answer gives the label",
]
LABEL_QUESTION = "Sentence: patients received aspirin daily\nWhat is the label of this sentence?"


def label_items(profile: str, template_file=None, records: int = 1):
    """The questions of `records` pubmed_rct instances prepared under `profile`, all six entries retrieved."""
    memory = Memory("", tuple(MemoryEntry(f"s{i}", t) for i, t in enumerate(LABELS)), ())
    recs = [MemoryRecord(f"p{n}", "pubmed_rct", memory) for n in range(records)]
    question = {"question_id": "p", "question": LABEL_QUESTION, "answers": ["2"]}
    rows = {r.instance_id: {"instance_id": r.instance_id, "questions": [question]} for r in recs}
    tasks = {"pubmed_rct": TaskData(rows, "0" * 64, dict.fromkeys(rows, "test"))}
    profile_ = get_profile(profile)
    prompt = ReaderPrompt.for_profile(profile_, template_file)
    return prepare(recs, tasks, ScorerConfig(top_k=6), prompt, COUNTER, profile_), prompt


def ranks(query: str, epsilon: float | None) -> tuple[int, ...]:
    return tuple(MemoryIndex(LABELS, epsilon=epsilon).search(query, 6))


def test_the_paper_profile_retrieves_with_the_whole_user_message(tmp_path):
    template = tmp_path / "user.jinja"
    template.write_text(
        "{% block system %}{{ core }}{% endblock %}{% block user %}{{ task }} {{ query_prompt }} {{ question }}"
        "{% endblock %}",
        encoding="utf-8",
    )
    (item,), prompt = label_items("memalpha-paper", template)
    query_prompt = get_task("pubmed_rct").query_prompt
    assert item.instance.query_prompt == query_prompt
    message = prompt.render_user(LABEL_QUESTION, query_prompt, "pubmed_rct")
    assert item.semantic_rank == ranks(message, 0.25)
    others = [
        LABEL_QUESTION,
        prompt.render_user(LABEL_QUESTION, None, "pubmed_rct"),
        prompt.render_user(LABEL_QUESTION, query_prompt, ""),
    ]
    assert all(ranks(text, 0.25) != item.semantic_rank for text in others)  # each part of it counts
    assert item.metric == "memalpha-eval:icl_label" and item.question_tokens is None  # the system alone counts


def test_v2_retrieves_a_label_tasks_bare_sentence_and_counts_the_question():
    (item,), _ = label_items("v1")
    assert item.semantic_rank == ranks("patients received aspirin daily", 0.25) != ranks(LABEL_QUESTION, 0.25)
    assert item.metric == "boxed_label_accuracy" and item.question_tokens == COUNTER.count(LABEL_QUESTION)


def test_every_record_gets_its_questions():
    items, _ = label_items("v1", records=3)
    assert [it.record.instance_id for it in items] == ["p0", "p1", "p2"]


def test_answers_reach_the_callback_and_without_a_window_go_in_one_call():
    _, _, items = prepared(3, 4)
    asked, seen = RecordingReader(), []
    phases = PhaseLog()
    answer(items, asked, lambda i, r: seen.append((i, r)), timings=phases)
    assert asked.calls == [12] and phases.entered == ["retrieval and prompts"]
    assert len(seen) == 12 and all(r is items[i].response for i, r in seen)
    _, _, again = prepared(3, 4)
    phases = PhaseLog()
    answer(again, RecordingReader(), None, window=5, timings=phases)
    assert phases.entered == ["retrieval and prompts"] * 3  # each window's prompts, timed as such


def test_verdicts_reach_the_callback_and_without_a_window_go_in_one_call():
    records, tasks = task_data(1, 3, task="longmemeval_s")  # judged
    profile = get_profile("v1")
    items = prepare(records, tasks, profile.defaults, ReaderPrompt.for_profile(profile), COUNTER, profile)
    for item in items:
        item.response = ReaderResponse.from_raw("Paris", 30, 1)
    judging, seen = Scripted("judge", lambda user: "yes"), []
    judge(items, judging, profile.defaults, lambda i, r: seen.append((i, r)))
    assert judging.calls == [3] and [i for i, _ in seen] == [0, 1, 2]
    assert all(r.raw_text == "yes" for _, r in seen) and [it.score for it in items] == [1.0] * 3
