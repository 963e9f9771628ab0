"""The main job from a script, through `benchmark.api` alone: build tasks from the authors' release
files, run a memory agent written here, score its memories, print the table.

    python examples/api/evaluate.py --raw-dir /path/to/raw --model Qwen/Qwen3-32B \
        --base-url http://127.0.0.1:8000/v1 --out runs/api-example

Without --base-url the reader runs in-process with transformers (`--model` a local model folder; the
`local` extra). Running it again resumes: finished memories and reader answers are reused.
"""

from __future__ import annotations

import argparse
import json
import re

from benchmark import api

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class HeadlinesSession(api.Session):
    """One instance: the first sentence of every chunk becomes a semantic entry."""

    def __init__(self, keep: int):
        self.keep = keep
        self.entries: list[api.MemoryEntry] = []
        self.chunks = 0

    def observe(self, chunk: str) -> None:
        for sentence in SENTENCE_END.split(chunk.strip())[: self.keep]:
            self.entries.append(api.MemoryEntry(f"s{len(self.entries)}", sentence))
        self.chunks += 1

    def memory(self) -> api.Memory:
        return api.Memory(f"First sentences of {self.chunks} chunks.", tuple(self.entries), ())


class HeadlinesAgent(api.Agent):
    """Keeps the first `keep` sentences of each chunk."""

    name = "headlines"
    option_docs = (api.AgentOption("keep", "1", "sentences kept per chunk"),)

    def __init__(self, **options: str):
        super().__init__(**options)
        opts = self.option_reader()
        self.keep = opts.integer("keep", low=1)
        self.resolved_options = opts.finish()

    def new_session(self, instance: api.InstanceInfo) -> api.Session:
        return HeadlinesSession(self.keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-dir", required=True, help="release files, one folder per source (raw/squad/, ...)")
    parser.add_argument("--model", required=True, help="the reader model")
    parser.add_argument("--base-url", help="an OpenAI-compatible server for the reader (else in-process)")
    parser.add_argument("--data", default="data", help="where to build the tasks (default data)")
    parser.add_argument("--out", default="runs/api-example", help="the run folder (default runs/api-example)")
    parser.add_argument("--limit-questions", type=int, help="ask only the first N questions per instance")
    args = parser.parse_args()

    tasks = ["squad", "icl_trec_coarse"]
    # 1. tasks, from the release files, counted with the offline tokenizer
    api.build(tasks, args.data, origin="raw", raw_dir=args.raw_dir, tokenizer="simple", limit=2, show_progress=False)
    # 2. the reader: served, or in-process
    if args.base_url:
        reader = api.make_reader("openai", args.model, base_url=args.base_url)
    else:
        reader = api.make_reader("hf", args.model)
    # 3. run the agent, then score its memories (api.evaluate does both in one call)
    summary = api.run(HeadlinesAgent(keep="2"), args.out, tasks=tasks, data=args.data, tokenizer="simple")
    print(f"memories: {summary.written} written, {summary.resumed} kept from before, {len(summary.failed)} failed")
    result = api.score(
        args.out, reader=reader, data=args.data, tokenizer="simple", limit_questions=args.limit_questions
    )
    scores = result.scores
    print(json.dumps({"overall": scores["overall"], "tasks": {t: v["score"] for t, v in scores["tasks"].items()}}))


if __name__ == "__main__":
    main()
