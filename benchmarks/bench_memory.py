"""Peak memory of `memalpha score` against the size of the memory and the number of questions.

Run by hand (figures go into docs/performance.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_memory.py [--baseline REF]

Each case is a fresh process that scores one instance of a task built here: a memory of N entries (pairs
of real SQuAD sentences, half semantic, half timestamped episodic, every entry distinct) and Q real SQuAD
questions, through `benchmark.scoring.score_run` with the default profile, the real Qwen-vocabulary BPE
counter (`tests/qwen_bpe.py`), the response cache, and a reader that answers at once in-process (so
that the figure is the scorer's, not a server's). "peak" is the process's peak resident memory
(VmHWM) minus its resident memory just before `score_run`, after a first run on the same instance
with 10 entries has paid what every run pays once (imports, tables, tokenizer); per byte of
`memories.jsonl` ("bytes/byte").

`--baseline REF` runs the same cases (up to `--baseline-max` entries), in the same run, with the `benchmark`
and `tasks` packages of the git revision REF (e.g. `main`) in place of this checkout's: the anchor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = "squad"


def write_case(folder: Path, raw_dir: Path, entries: int, questions: int) -> None:
    """folder/data/squad (one instance, `questions` questions) and folder/run/memories.jsonl."""
    from bench_retrieval import entries as pair_entries
    from bench_scoring import corpus
    from datasets import Dataset, DatasetDict

    from tasks.manifest import MANIFEST_FORMAT, dataset_sha256, split_sha256, write_manifest
    from tasks.registry import get_task
    from tasks.schema import FEATURES

    sentences, pool = corpus(raw_dir)
    texts = pair_entries(sentences, entries, duplicates=False)
    spec = get_task(TASK)
    row = {
        "instance_id": "bench-0",
        "task": TASK,
        "competency": spec.competency,
        "chunks": ["(not read by the scorer)"],
        "questions": [
            {
                "question_id": f"q{i}",
                "question": pool[i % len(pool)],
                "answers": ["an answer"],
                "question_type": None,
                "question_date": None,
            }
            for i in range(questions)
        ],
        "context_tokens": 1,
        "metadata": "{}",
    }
    directory = folder / "data" / TASK
    DatasetDict({"test": Dataset.from_list([row], features=FEATURES)}).save_to_disk(str(directory))
    hashes = {"test": split_sha256([row])}
    write_manifest(
        directory,
        {
            "format": MANIFEST_FORMAT,
            "task": TASK,
            "competency": spec.competency,
            "metric": spec.metric,
            "origin": "raw",
            "splits": {"test": {"sha256": hashes["test"]}},
            "sha256": dataset_sha256(hashes),
        },
    )
    half = entries // 2
    memory = {
        "core": "The user has been reading Wikipedia articles about many topics.",
        "semantic": [{"id": f"s{i}", "content": text} for i, text in enumerate(texts[:half])],
        "episodic": [
            {"id": f"e{i}", "content": text, "timestamp": f"2024-01-{i % 28 + 1:02d}"}
            for i, text in enumerate(texts[half:])
        ],
    }
    warm = {**memory, "semantic": memory["semantic"][:5], "episodic": memory["episodic"][:5]}
    for name, content in (("run", memory), ("warm", warm)):  # "warm": the same instance, 10 entries
        (folder / name).mkdir(parents=True)
        line = json.dumps({"instance_id": "bench-0", "task": TASK, "memory": content, "stats": {}}, ensure_ascii=False)
        (folder / name / "memories.jsonl").write_text(line + "\n", encoding="utf-8")


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def this_checkouts_peak_memory():
    """`benchmark.timings.peak_memory_bytes` of this checkout, whichever `benchmark` package is imported."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("this_checkouts_timings", ROOT / "benchmark" / "timings.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module.peak_memory_bytes


def run_case(folder: Path, tokenizer_dir: Path) -> dict:
    """Score the case in this process; what it cost."""
    sys.path.insert(0, str(ROOT / "tests"))
    from qwen_bpe import qwen_bpe_counter

    import benchmark.scoring as scoring
    from benchmark.cache import CachedReader, ResponseCache
    from benchmark.readers.base import ReaderResponse

    peak_memory_bytes = this_checkouts_peak_memory()  # the baseline's packages may not have it

    class InstantReader:
        def describe(self) -> dict:
            return {"backend": "instant", "model": "none"}

        def generate(self, requests, on_result=None):
            out = []
            for i, _ in enumerate(requests):
                response = ReaderResponse.from_raw("an answer", 100, 2)
                out.append(response)
                if on_result is not None:
                    on_result(i, response)
            return out

    counter = qwen_bpe_counter(tokenizer_dir)
    # a first run on 10 entries pays what any run pays once (imports, tables, the task's load)
    scoring.score_run(folder / "warm", folder / "data", InstantReader(), counter=counter, show_progress=False)
    reader = CachedReader(InstantReader(), ResponseCache(folder / "cache.sqlite"))
    before = resident_bytes()
    start = time.process_time()
    scoring.score_run(folder / "run", folder / "data", reader, counter=counter, show_progress=False)
    cpu = time.process_time() - start
    peak = peak_memory_bytes()
    return {"peak_over_start": peak - before, "cpu": cpu, "code": str(Path(scoring.__file__).parents[1])}


def measure(folder: Path, tokenizer_dir: Path, code: Path | None) -> dict:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, __file__, "--case", str(folder), "--tokenizer-dir", str(tokenizer_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"case {folder} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_code(ref: str, into: Path) -> Path:
    """The `benchmark` and `tasks` packages of git revision `ref`, unpacked into `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "benchmark", "tasks"], capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("MEMALPHA_RAW_DIR", "../shared/data/raw")))
    parser.add_argument(
        "--cases",
        nargs="*",
        default=["10000x100", "100000x100", "1000000x100", "10000x1000", "10000x3000"],
        help="ENTRIESxQUESTIONS",
    )
    parser.add_argument("--baseline", metavar="REF", help="also run each case with the packages of this git revision")
    parser.add_argument(
        "--baseline-max",
        type=int,
        default=100_000,
        help="entries above which the baseline is not run (main's scorer took ~47 bytes a byte: 14 GB at 1M)",
    )
    parser.add_argument("--tokenizer-dir", type=Path, default=Path(tempfile.gettempdir()) / "memalpha-qwen-bpe")
    parser.add_argument("--case", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.tokenizer_dir)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        scratch_dir = Path(scratch)
        code = baseline_code(args.baseline, scratch_dir / "baseline") if args.baseline else None
        print(f"CPU cores: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}")
        header = "| entries | questions | memories.jsonl | peak (bytes/byte) | CPU s |"
        rule = "|---:|---:|---:|---|---:|"
        if code is not None:
            header += f" {args.baseline}: peak (bytes/byte) | {args.baseline}: CPU s |"
            rule += "---|---:|"
        print(header)
        print(rule)
        for case in args.cases:
            entries, questions = (int(x) for x in case.split("x"))
            folder = scratch_dir / case
            write_case(folder, args.raw_dir, entries, questions)
            size = (folder / "run" / "memories.jsonl").stat().st_size
            ours = measure(folder, args.tokenizer_dir, None)
            line = (
                f"| {entries:,} | {questions:,} | {size / 2**20:,.1f} MB "
                f"| {ours['peak_over_start'] / 2**20:,.0f} MB ({ours['peak_over_start'] / size:.1f}) "
                f"| {ours['cpu']:,.1f} |"
            )
            if code is not None and entries > args.baseline_max:
                line += " — | — |"
            elif code is not None:
                theirs = measure(folder, args.tokenizer_dir, code)
                assert theirs["code"] == str(code), theirs["code"]
                line += (
                    f" {theirs['peak_over_start'] / 2**20:,.0f} MB ({theirs['peak_over_start'] / size:.1f}) "
                    f"| {theirs['cpu']:,.1f} |"
                )
            print(line, flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
