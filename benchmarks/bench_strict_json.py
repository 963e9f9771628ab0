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

Then one chat-completion reply (~400 bytes, as a reader server sends it; once more with its answer's
non-ASCII characters escaped): microseconds per reply (`timeit`, median of --repeat) of
`tasks.strict_json.decode_reply` (what `benchmark.readers.replies.read_reply` reads a reply with), of the
full `decode`, and of `json.loads` and `orjson.loads` (anchors: decode_reply reads with orjson first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import orjson

from benchmark.memory import parse_record, read_memories
from tasks.atomic import replace_file
from tasks.strict_json import decode, decode_reply

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

    replies(args.repeat)


def reply_body(ensure_ascii: bool) -> bytes:
    answer = " ".join(WORDS)
    body = {
        "id": "chatcmpl-0",
        "object": "chat.completion",
        "created": 1733300000,
        "model": "Qwen/Qwen3-32B",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3012, "completion_tokens": 21, "total_tokens": 3033},
    }
    return json.dumps(body, ensure_ascii=ensure_ascii).encode()


def replies(repeat: int, number: int = 20_000) -> None:
    print(
        "\n| reply | bytes | decode_reply (µs) | decode (µs) | json.loads (µs) | orjson.loads (µs) "
        "| decode_reply ÷ json.loads |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for ensure_ascii in (False, True):
        body = reply_body(ensure_ascii)
        runs: dict[Callable[[bytes], object], list[float]] = {
            decode_reply: [],
            decode: [],
            json.loads: [],
            orjson.loads: [],
        }
        for _ in range(repeat):
            for fn, times in runs.items():
                times.append(timeit.timeit(lambda fn=fn, body=body: fn(body), number=number) / number * 1e6)
        fast, full, plain, orjson_plain = (statistics.median(times) for times in runs.values())
        writer = "ensure_ascii=True" if ensure_ascii else "ensure_ascii=False"
        print(
            f"| {writer} | {len(body)} | {fast:.1f} | {full:.1f} | {plain:.1f} | {orjson_plain:.1f} "
            f"| {fast / plain:.2f}× |"
        )


if __name__ == "__main__":
    main()
