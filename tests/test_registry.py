"""The registry: every task of DESIGN.md is there, suites are consistent, typos get suggestions."""

from __future__ import annotations

import pytest

from tasks.errors import UnknownNameError
from tasks.registry import METRICS, all_tasks, get_suite, get_task, resolve_names

DESIGN_TASKS = {
    "squad",
    "hotpotqa",
    "perltqa",
    "lme_train",
    "booksum",
    "pubmed_rct",
    "ttl_trec_coarse",
    "ttl_nlu",
    "ruler_qa1_197k",
    "ruler_qa2_421k",
    "longmemeval_s",
    "icl_banking77",
    "icl_clinic150",
    "icl_nlu",
    "icl_trec_coarse",
    "icl_trec_fine",
    "infbench_sum",
    "eventqa",
    "recsys_redial",
    "detective_qa",
    "factconsolidation_sh",
    "factconsolidation_mh",
    "locomo",
}


def test_every_design_task_is_registered_with_complete_metadata():
    names = {t.name for t in all_tasks()}
    assert DESIGN_TASKS <= names
    for spec in all_tasks():
        assert spec.metric in METRICS and spec.competency in {"AR", "TTL", "LRU", "CR"}
        assert spec.chunk_size > 0 and spec.sources and spec.bibtex().startswith("@")
        for source in spec.sources:
            if source.origin == "raw":
                assert source.revision is None
        assert callable(spec.load_builder())


def test_suites():
    assert set(get_suite("memalpha-train").tasks) == {
        "squad",
        "hotpotqa",
        "perltqa",
        "lme_train",
        "booksum",
        "pubmed_rct",
        "ttl_trec_coarse",
        "ttl_nlu",
    }
    assert "lme_train" not in get_suite("memalpha-val").tasks
    paper = get_suite("mab-paper")
    assert len(paper.tasks) == 9 and all(split == "test" for _, split in paper.members)
    assert set(paper.tasks) < set(get_suite("mab-full").tasks)
    assert [get_task(t).params["target_tokens"] for t in get_suite("length-scaling").tasks] == [
        k * 1024 for k in (8, 16, 32, 64, 128, 256, 512)
    ]


def test_unknown_names_suggest_the_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'squad'"):
        get_task("sqaud")
    with pytest.raises(UnknownNameError, match="mab-paper"):
        get_suite("mab-papr")


def test_resolve_names_expands_suites_without_repeats():
    names = resolve_names(["squad", "memalpha-train"])
    assert names[0] == "squad" and names.count("squad") == 1 and "ttl_nlu" in names
