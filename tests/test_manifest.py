"""Built tasks as verifiable HF datasets: canonical hashes, strict manifests, hashes checked on every load,
either layout loadable with plain `datasets` calls, dataset cards, `DatasetInfo`, and `tasks publish`."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from datasets import load_dataset, load_from_disk
from huggingface_hub import DatasetCard

from benchmark.cli import main
from tasks.build import UnpinnedSourceWarning, build_task, resolve_commit
from tasks.errors import SourceUnavailableError, TaskError
from tasks.manifest import (
    TaskHashError,
    dataset_sha256,
    load_built,
    read_manifest,
    split_sha256,
    stream_split_sha256,
)
from tasks.registry import Source
from tasks.validate import validate_task

ROW = {
    "instance_id": "t-1",
    "task": "squad",
    "competency": "AR",
    "chunks": ["one", "two"],
    "questions": [
        {"question_id": "q", "question": "Q?", "answers": ["a"], "question_type": None, "question_date": None}
    ],
    "context_tokens": 2,
    "metadata": "{}",
}


def test_row_hash_ignores_key_order_but_not_content():
    shuffled = {k: ROW[k] for k in reversed(list(ROW))}
    shuffled["questions"] = [{k: v for k, v in reversed(list(ROW["questions"][0].items()))}]
    assert split_sha256([shuffled]) == split_sha256([ROW])
    changed = dict(ROW, questions=[dict(ROW["questions"][0], answers=["TAMPERED"])])
    assert split_sha256([changed]) != split_sha256([ROW])
    assert split_sha256([ROW, changed]) != split_sha256([changed, ROW])  # row order is part of the data


def test_task_hash_ignores_split_order_but_not_which_split_holds_what():
    a, b = split_sha256([ROW]), split_sha256([])
    assert dataset_sha256({"train": a, "validation": b}) == dataset_sha256({"validation": b, "train": a})
    assert dataset_sha256({"train": a, "validation": b}) != dataset_sha256({"train": b, "validation": a})


@pytest.fixture(scope="module")
def small(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1, show_progress=False)
    build_task("ttl_trec_coarse", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=2, show_progress=False)
    return out


def copy_task(small: Path, tmp_path: Path, name: str = "squad") -> Path:
    return Path(shutil.copytree(small / name, tmp_path / name))


def edit_manifest(folder: Path, change) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("sha256"), "field 'sha256' missing"),
        (lambda m: m.update(sha256="abc"), "field 'sha256': expected a sha256"),
        (lambda m: m["splits"]["train"].pop("sha256"), "field 'splits.train.sha256': expected a sha256"),
        (lambda m: m["splits"]["train"].update(sha256="0" * 64), "not the hash of the split hashes"),
        (lambda m: m.update(splits={}), "field 'splits'"),
    ],
    ids=["no-sha256", "bad-sha256", "no-split-sha256", "split-hash-changed", "no-splits"],
)
def test_manifest_without_sound_hashes_is_refused(small, tmp_path, change, message):
    folder = copy_task(small, tmp_path)
    edit_manifest(folder, change)
    with pytest.raises(TaskError, match=message):
        read_manifest(folder)
    with pytest.raises(TaskError, match=message):
        load_built(folder)


@pytest.mark.realdata
def test_changed_rows_are_an_error_on_load_naming_the_task(small, tmp_path):
    folder = copy_task(small, tmp_path)
    data = load_from_disk(str(folder))
    rows = data["train"].to_list()
    rows[0]["questions"][0]["answers"] = ["TAMPERED"]
    tampered = data["train"].from_list(rows, features=data["train"].features)
    shutil.rmtree(folder / "train")
    tampered.save_to_disk(str(folder / "train"))
    with pytest.raises(TaskHashError, match=r"task squad \(.*\), split train: the rows hash to"):
        load_built(folder)
    assert load_built(folder, verify=False)[0]["train"][0]["questions"][0]["answers"] == ["TAMPERED"]
    assert any("differs from the manifest" in p for p in validate_task(folder))
    assert main(["tasks", "show", str(folder)]) != 0  # every command that loads it refuses it


@pytest.mark.realdata
def test_streamed_hash_is_the_build_hash(small):
    data, manifest = load_built(small / "squad")
    for split in data:
        assert (
            stream_split_sha256(data[split])
            == split_sha256(data[split].to_list())
            == manifest["splits"][split]["sha256"]
        )


@pytest.mark.realdata
def test_both_layouts_load_with_plain_datasets_calls(small, tmp_path):
    data, manifest = load_built(small / "squad")
    plain = load_from_disk(str(small / "squad"))  # the build folder is a DatasetDict folder
    assert {s: plain[s].to_list() for s in plain} == {s: data[s].to_list() for s in data}
    via_card = load_dataset(str(small / "squad"))  # its card's default config names the Arrow files
    assert {s: split_sha256(via_card[s].to_list()) for s in via_card} == {
        s: v["sha256"] for s, v in manifest["splits"].items()
    }
    legacy = tmp_path / "legacy" / "squad"  # builds before 0.2 kept the DatasetDict in data/
    legacy.mkdir(parents=True)
    shutil.copy(small / "squad" / "manifest.json", legacy)
    plain.save_to_disk(str(legacy / "data"))
    assert load_built(tmp_path / "legacy", "squad")[1]["sha256"] == manifest["sha256"]


@pytest.mark.realdata
def test_dataset_info_and_card(small):
    split = load_from_disk(str(small / "squad"))["train"]
    assert split.info.license == "CC-BY-SA-4.0"
    assert (
        "@inproceedings{rajpurkar2016squad" in split.info.citation
        and "@article{wang2025memalpha" in split.info.citation
    )
    assert "squad" in split.info.description
    card = DatasetCard.load(small / "squad" / "README.md")
    manifest = read_manifest(small / "squad")
    assert card.data.license == ["cc-by-sa-4.0"] and card.data.language == ["en"]
    assert card.data.task_categories == ["question-answering"]
    assert card.data.memalpha_bench["tasks"]["squad"]["sha256"] == manifest["sha256"]
    assert card.data.memalpha_bench["tasks"]["squad"]["source"]["id"] == "squad"
    assert "```bibtex" in card.text and "rajpurkar2016squad" in card.text
    ttl = DatasetCard.load(small / "ttl_trec_coarse" / "README.md")
    assert ttl.data.license == ["unknown"] and ttl.data.task_categories == ["text-classification"]


@pytest.mark.realdata
def test_licenses_follow_the_origin(raw_dir, tmp_path):
    """Banking77 is CC-BY-4.0 (its LICENSE file); MemoryAgentBench's copy adds its own MIT."""
    result = build_task(
        "icl_banking77", tmp_path, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False
    )
    assert result.manifest["license"] == "CC-BY-4.0"
    assert DatasetCard.load(result.path / "README.md").data.license == ["cc-by-4.0"]
    from tasks.registry import get_task

    assert get_task("icl_banking77").license("hub") == "MIT AND CC-BY-4.0"
    assert get_task("icl_clinic150").license("raw") == "CC-BY-3.0"
    assert get_task("perltqa").license("raw") == "CC-BY-NC-4.0"
    with pytest.raises(ValueError, match="not among the SPDX ids"):
        Source("raw", "x", license="CC BY 4.0")


@pytest.mark.realdata
def test_publish_writes_a_hub_repository_that_load_dataset_reads(small, tmp_path, capsys):
    out = tmp_path / "repo"
    assert main(["tasks", "publish", str(small), "--repo", "someone/memalpha-tasks", "--out", str(out)]) == 0
    assert "2 task(s) published as someone/memalpha-tasks" in capsys.readouterr().out
    card = DatasetCard.load(out / "README.md")
    assert [c["config_name"] for c in card.data.configs] == ["squad", "ttl_trec_coarse"]
    assert set(card.data.license) == {"cc-by-sa-4.0", "unknown"}
    for task in ("squad", "ttl_trec_coarse"):
        manifest = read_manifest(out / task)
        loaded = load_dataset(str(out), task)
        assert {s: split_sha256(loaded[s].to_list()) for s in loaded} == {
            s: v["sha256"] for s, v in manifest["splits"].items()
        }
    assert main(["tasks", "publish", str(small), "--repo", "someone/x", "--out", str(out)]) != 0  # not empty


def test_a_release_without_a_pinned_revision_is_announced(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = {
        "instance_id": 0,
        "chunks": json.dumps(["[Dialogue] <User> Paris is in France."]),
        "questions_and_answers": json.dumps([{"question": "Which country?", "answer": ["France"]}]),
        "data_source": "ruler_qa1_197K",
        "metadata": "{}",
    }
    repo = tmp_path / "hub" / "YuWangX" / "Memalpha-Memoryagentbench"
    repo.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row]), repo / "test.parquet")
    with pytest.warns(UnpinnedSourceWarning, match="UNPINNED SOURCE"):
        result = build_task(
            "ruler_qa1_197k",
            tmp_path / "out",
            origin="release",
            hub_mirror=tmp_path / "hub",
            tokenizer="simple",
            show_progress=False,
        )
    assert result.manifest["source"]["pinned"] is False and result.manifest["source"]["mirror"] == str(repo)
    assert any("UNPINNED SOURCE" in note for note in result.manifest["notes"])
    args = ["tasks", "build", "ruler_qa1_197k", "--from", "release", "--hub-mirror", str(tmp_path / "hub")]
    with pytest.warns(UnpinnedSourceWarning):
        assert main([*args, "--out", str(tmp_path / "cli"), "--tokenizer", "simple", "--quiet"]) == 0
    assert "WARNING: UNPINNED SOURCE: ruler_qa1_197k" in capsys.readouterr().err


class FakeHubApi(BaseHTTPRequestHandler):
    """The hub's `GET /api/datasets/<repo>[/revision/<rev>]`: a repo's head and one branch."""

    COMMITS: ClassVar[dict[str, str]] = {"main": "a" * 40, "v1": "b" * 40}

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        prefix = "/api/datasets/org/data"
        if self.path in (prefix, f"{prefix}/revision/main", f"{prefix}/revision/v1"):
            revision = self.path.rsplit("/", 1)[-1] if "/revision/" in self.path else "main"
            body, status = json.dumps({"id": "org/data", "sha": self.COMMITS[revision]}).encode(), 200
        else:
            body, status = json.dumps({"error": "Repository not found"}).encode(), 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_resolve_commit_asks_the_hub_for_the_commit(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHubApi)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        assert resolve_commit("org/data", None, endpoint=endpoint) == "a" * 40
        assert resolve_commit("org/data", "v1", endpoint=endpoint) == "b" * 40
        assert resolve_commit("org/data", "c" * 40, endpoint=endpoint) == "c" * 40  # a commit is its own answer
        with pytest.raises(SourceUnavailableError, match="cannot resolve org/missing@main"):
            resolve_commit("org/missing", None, endpoint=endpoint)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
