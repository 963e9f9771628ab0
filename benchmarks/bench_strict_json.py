"""What the strict reader costs over plain `json.loads`, on memories files, and what atomic writes cost over
writing in place.

Run by hand (figures go into docs/performance.md):

    python benchmarks/bench_strict_json.py [--repeat 5] [--entries 1000 10000 100000]

The memories file is one instance whose memory holds N semantic entries of ~40 words (the shape of a
chunk-store memory), written as `memalpha run` writes it (`ensure_ascii=False`), and once more with
`ensure_ascii=True` (every non-ASCII character escaped, as Python's default writes: the reader then looks
at every string for surrogates). Measured in the same run, interleaved, CPU seconds of this process
(median of --repeat):

- strict: `benchmark.memory.read_memories(path)`, the product's reader (strict decode + the format checks);
- anchor: the same file read line by line with `json.loads` + `benchmark.memory.parse_record` (the format
  checks alone, as before this reader);
- write: `tasks.atomic.replace_file` of the file's text (temporary file, fsync, rename), against
  `Path.write_text` in place (anchor). Wall seconds (fsync waits for the disk), median of --repeat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmark.memory import parse_record, read_memories
from tasks.atomic import replace_file

WORDS = "Paris is the capital of France and the Seine runs through it; café, naïve, 東京, 🙂".split()


def memory_line(entries: int, ensure_ascii: bool) -> str:
    texts = (" ".join(WORDS[(i + j) % len(WORDS)] for j in range(40)) for i in range(entries))
    semantic = [{"id": f"s{i}", "content": text} for i, text in enumerate(texts)]
    record = {
        "instance_id": "squad-0",
        "task": "squad",
        "memory": {"core": "", "semantic": semantic, "episodic": []},
        "stats": {"chunks_seen": entries, "seconds": 1.5},
    }
    return json.dumps(record, ensure_ascii=ensure_ascii) + "\n"


def plain_read(path: Path) -> None:
    with open(path, "rb") as f:
        for raw in f:
            record, problems = parse_record(json.loads(raw))
            assert record is not None and not problems


def timed(fn: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    fn()
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| entries | MB | writer | strict read (s) | json.loads read (s) | ratio | atomic write (s) | in place (s) |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memories.jsonl"
        for entries in args.entries:
            for ensure_ascii in (False, True):
                text = memory_line(entries, ensure_ascii)
                path.write_text(text, encoding="utf-8")
                strict, plain, atomic, in_place = [], [], [], []
                for _ in range(args.repeat):
                    strict.append(timed(lambda: read_memories(path), time.process_time))
                    plain.append(timed(lambda: plain_read(path), time.process_time))
                    atomic.append(timed(lambda text=text: replace_file(path, text), time.perf_counter))
                    in_place.append(timed(lambda text=text: path.write_text(text, encoding="utf-8"), time.perf_counter))
                s, p = statistics.median(strict), statistics.median(plain)
                writer = "ensure_ascii=True" if ensure_ascii else "ensure_ascii=False"
                print(
                    f"| {entries:,} | {len(text.encode()) / 1e6:.1f} | {writer} | {s:.3f} | {p:.3f} | {s / p:.2f}× "
                    f"| {statistics.median(atomic):.3f} | {statistics.median(in_place):.3f} |"
                )


if __name__ == "__main__":
    main()
