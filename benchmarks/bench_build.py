"""Task-build performance: build throughput on the real raw samples, and what verifying a task's hash on
load costs.

Run by hand (figures go into docs/performance.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_build.py [--tasks squad ...] [--repeat 3]

Builds use the `simple` counter (offline; `--tokenizer` of a build). Chunking against one tokenizer
pass with the real Qwen-vocabulary BPE is measured by benchmarks/bench_chunking.py.

Verification: `tasks.manifest.load_built` recomputes every split's sha256 from the rows on each load. Its
cost (CPU seconds) is measured beside the load itself (`load_built(..., verify=False)`), in the same run,
on every built task, and on a task as big as the largest of the benchmark (InfBench-Sum: 100 instances of
about 180k tokens), made of real SQuAD text.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import datasets

from tasks.build import build_task
from tasks.manifest import MANIFEST_FORMAT, dataset_sha256, load_built, split_sha256, write_manifest
from tasks.schema import FEATURES
from tasks.sources.squad import read_squad_file

DEFAULT_TASKS = [
    "squad",
    "hotpotqa",
    "ttl_trec_coarse",
    "ttl_nlu",
    "icl_banking77",
    "icl_clinic150",
    "icl_trec_coarse",
    "locomo",
    "scaling_squad_128k",
]


def timed(fn, repeat: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def big_task(raw_dir: Path, out: Path, instances: int = 100, chunks: int = 90) -> Path:
    """A built-task folder of `instances` rows of `chunks` 8 kB chunks of real SQuAD text (about 180k
    tokens each), written as `memalpha tasks build` writes one, with its manifest."""
    from datasets import Dataset, DatasetDict

    text = "\n\n".join(p.context for f in sorted((raw_dir / "squad").glob("*.json")) for p in read_squad_file(f))
    size = 8000
    rows = []
    for i in range(instances):
        start = (i * chunks * size) % (len(text) - chunks * size)
        rows.append(
            {
                "instance_id": f"big-{i}",
                "task": "infbench_sum",
                "competency": "LRU",
                "chunks": [text[start + k * size : start + (k + 1) * size] for k in range(chunks)],
                "questions": [
                    {
                        "question_id": f"big-{i}-q0",
                        "question": "Summarize the book.",
                        "answers": ["a summary"],
                        "question_type": None,
                        "question_date": None,
                    }
                ],
                "context_tokens": chunks * 2000,
                "metadata": "{}",
            }
        )
    folder = out / "infbench_sum"
    DatasetDict({"test": Dataset.from_list(rows, features=FEATURES)}).save_to_disk(str(folder))
    hashes = {"test": split_sha256(rows)}
    manifest = {"format": MANIFEST_FORMAT, "task": "infbench_sum", "splits": {"test": {"sha256": hashes["test"]}}}
    write_manifest(folder, {**manifest, "sha256": dataset_sha256(hashes)})
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("MEMALPHA_RAW_DIR", "../shared/data/raw")))
    parser.add_argument("--tasks", nargs="*", default=DEFAULT_TASKS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    print(f"CPU cores available: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        print("\n## Build throughput from the raw samples (tokenizer `simple`, progress bars off)")
        print("| task | instances | context tokens | median seconds | tokens/s |")
        print("|---|---|---|---|---|")
        built = []
        for name in args.tasks:

            def run(name=name):
                return build_task(
                    name,
                    Path(tmp) / "out",
                    origin="raw",
                    raw_dir=args.raw_dir,
                    tokenizer="simple",
                    show_progress=False,
                )

            result = run()
            built.append(result.path)
            tokens = sum(s["context_tokens"]["total"] for s in result.manifest["splits"].values())
            instances = sum(s["instances"] for s in result.manifest["splits"].values())
            seconds = timed(run, args.repeat)
            print(f"| {name} | {instances} | {tokens:,} | {seconds:.2f} | {tokens / seconds:,.0f} |")

        print("\n## Loading a built task: without and with the hash check (median CPU seconds)")
        print("| task | data on disk | load | load + verify | verify costs | verify rate |")
        print("|---|---:|---:|---:|---:|---:|")
        for path in [*built, big_task(args.raw_dir, Path(tmp) / "big")]:
            size = sum(f.stat().st_size for f in path.rglob("*.arrow"))
            plain = timed(lambda p=path: load_built(p, verify=False), args.repeat, time.process_time)
            checked = timed(lambda p=path: load_built(p), args.repeat, time.process_time)
            print(
                f"| {path.name} | {size / 1e6:.1f} MB | {plain:.3f} | {checked:.3f} | "
                f"{checked - plain:.3f} s | {size / 1e6 / max(checked - plain, 1e-9):.0f} MB/s |"
            )


if __name__ == "__main__":
    main()
