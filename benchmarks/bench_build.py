"""Task-build performance: chunking a 500k-token input, and build throughput on the real raw samples.

Run by hand (figures go into docs/performance.md):

    MEMALPHA_RAW_DIR=../shared/data/raw python benchmarks/bench_build.py [--tasks squad ...] [--repeat 3]

Token counters measured: `simple` (the offline counter) and a byte-level BPE tokenizer with Qwen's
pre-tokenizer and a 32k vocabulary trained on the input, as an offline stand-in for the real Qwen3
tokenizer (the hub is unreachable here; the Rust code path and per-token cost are the same kind).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tasks.build import build_task
from tasks.chunking import chunk_text
from tasks.sources.squad import read_squad_file
from tasks.tokenization import HFTokenizerCounter, SimpleCounter

QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
DEFAULT_TASKS = [
    "squad",
    "hotpotqa",
    "ttl_trec_coarse",
    "ttl_nlu",
    "icl_banking77",
    "icl_clinic150",
    "icl_trec_coarse",
    "locomo",
]


def bpe_counter(texts: list[str], directory: Path) -> HFTokenizerCounter:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=32000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    )
    path = directory / "tokenizer.json"
    tok.save(str(path))
    return HFTokenizerCounter(name="bpe-32k (stand-in)", revision=None, tokenizer_file=path, spec=str(path))


def long_text(raw_dir: Path, tokens: int, counter) -> str:
    """SQuAD paragraphs repeated until `tokens` tokens: realistic English, sentence structure intact."""
    paragraphs = [p.context for f in sorted((raw_dir / "squad").glob("*.json")) for p in read_squad_file(f)]
    out, total, i = [], 0, 0
    while total < tokens:
        p = paragraphs[i % len(paragraphs)]
        out.append(p)
        total += counter.count(p)
        i += 1
    return "\n\n".join(out)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("MEMALPHA_RAW_DIR", "../shared/data/raw")))
    parser.add_argument("--tasks", nargs="*", default=DEFAULT_TASKS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU cores available: {len(os.sched_getaffinity(0))}")

    with tempfile.TemporaryDirectory() as tmp:
        simple = SimpleCounter()
        text = long_text(args.raw_dir, 500_000, simple)
        bpe = bpe_counter([text], Path(tmp))
        print("\n## Chunking one 500k-token input into 2048-token sentence chunks")
        print("| counter | tokens in input | chunks | median seconds |")
        print("|---|---|---|---|")
        for counter in (simple, bpe):
            n_tokens = counter.count(text)
            chunks = chunk_text(text, counter, 2048)
            seconds = timed(lambda c=counter: chunk_text(text, c, 2048), args.repeat)
            print(f"| {counter.describe()['name']} | {n_tokens:,} | {len(chunks)} | {seconds:.2f} |")

        print("\n## Build throughput from the raw samples (tokenizer `simple`, progress bars off)")
        print("| task | instances | context tokens | median seconds | tokens/s |")
        print("|---|---|---|---|---|")
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
            tokens = sum(s["context_tokens"]["total"] for s in result.manifest["splits"].values())
            instances = sum(s["instances"] for s in result.manifest["splits"].values())
            seconds = timed(run, args.repeat)
            print(f"| {name} | {instances} | {tokens:,} | {seconds:.2f} | {tokens / seconds:,.0f} |")


if __name__ == "__main__":
    main()
