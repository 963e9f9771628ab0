"""The training suite shares no question and no context passage with validation and MemoryAgentBench.

Built from the real raw samples: every training task that has one (squad, hotpotqa, ttl_trec_coarse,
ttl_nlu) against every validation split and every mab-paper set that can be built from raw files.
"""

from __future__ import annotations

import pytest

from tasks.build import build_task
from tasks.overlap import overlap
from tasks.registry import get_suite

pytestmark = pytest.mark.realdata

TRAIN_TASKS = ("squad", "hotpotqa", "ttl_trec_coarse", "ttl_nlu")
MAB_FROM_RAW = ("icl_banking77", "icl_clinic150", "icl_nlu", "icl_trec_coarse", "icl_trec_fine")


@pytest.fixture(scope="module")
def built(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("contamination")
    for name in TRAIN_TASKS + MAB_FROM_RAW:
        build_task(name, out, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)
    return out


def test_the_checked_sets_are_the_suites_members():
    assert set(TRAIN_TASKS) <= set(get_suite("memalpha-train").tasks)
    assert set(TRAIN_TASKS) <= set(get_suite("memalpha-val").tasks)
    assert set(MAB_FROM_RAW) <= set(get_suite("mab-paper").tasks)


# The raw source file each task reads: tasks of one source must never share text.
SOURCE = {
    "squad": "squad",
    "hotpotqa": "hotpotqa",
    "ttl_trec_coarse": "trec",
    "ttl_nlu": "nlu",
    "icl_banking77": "banking77",
    "icl_clinic150": "clinc150",
    "icl_nlu": "nlu",
    "icl_trec_coarse": "trec",
    "icl_trec_fine": "trec",
}


@pytest.mark.parametrize("train", TRAIN_TASKS)
def test_training_split_shares_nothing_with_validation_or_mab(built, train):
    targets = [(t, "validation") for t in TRAIN_TASKS] + [(t, None) for t in MAB_FROM_RAW]
    for other, split in targets:
        report = overlap(built / train, built / other, split_a="train", split_b=split)
        assert report.passages_a > 0 and report.passages_b > 0
        assert report.shared_questions == [], f"{train}/train and {report.b} share questions"
        if SOURCE[train] == SOURCE[other]:
            assert report.shared_passages == [], f"{train}/train and {report.b} share passages"
        else:
            # Different datasets can hold the same generic utterance ("what is the date today"):
            # a coincidence of short texts, never a copied passage.
            assert len(report.shared_passages) <= 0.005 * report.passages_a
            assert all(len(p) <= 60 for p in report.shared_passages), report.shared_passages


def test_overlap_detects_real_sharing(built):
    """The check has teeth: two ICL sets built from the same TREC file share their context sentences."""
    report = overlap(built / "icl_trec_coarse", built / "icl_trec_fine")
    assert len(report.shared_passages) > 100 and report.shared_questions
