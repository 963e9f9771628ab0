"""Every task of the benchmark, declared once, and the suites that group them.

Facts about the original constructions (chunk sizes, caps, splits) are from the Mem-alpha code and the
MemoryAgentBench release; prompts are our own wording.
"""

from __future__ import annotations

from .licenses import combine
from .registry import Source, Suite, TaskSpec, register_suite, register_task

# Hub revisions every hub/release build is pinned to.
# Commit SHAs seen attached to each repo in public pins; `None` means no SHA could be established
# offline: such a source builds from the hub's current head, and the manifest records the commit it got.
REVISIONS: dict[str, str | None] = {
    "rajpurkar/squad": "7b6d24c440a36b6815f21b70d25016731768db1f",
    "hotpotqa/hotpot_qa": "1908d6afbbead072334abe2965f91bd2709910ab",
    "pietrolesci/pubmed-200k-rct": "8990ad31a48c6e5a09dadfc70b7328e3f139a54d",
    "ubaada/booksum-complete-cleaned": None,
    "CogComp/trec": "65752bf53af25bc935a0dce92fb5b6c930728450",  # refs/convert/parquet
    "xiaowu0162/longmemeval-cleaned": "98d7416c24c778c2fee6e6f3006e7a073259d48f",
    "ai-hyz/MemoryAgentBench": "7ea066982b140a19337e17e60d45d4076e042faf",
    "YuWangX/Memalpha": None,
    "YuWangX/Memalpha-Memoryagentbench": None,
}


SUMMARY_PROMPT = (
    "Your core memory keeps a running summary of the book the user has been reading, and the retrieved "
    "memories hold details from it. Use both to write the summary asked for below."
)
LABEL_PROMPT = (
    "Your core memory keeps the classification rules learned from labelled examples, and the retrieved "
    "memories hold examples with their labels. Decide the label of the sentence below. The label is a "
    "single number: give your final answer as \\boxed{label}."
)
EVENT_PROMPT = "Using what you remember of the book, complete the task below: name the event that happens next."
RECSYS_PROMPT = (
    "Act as a movie recommender. Using the dialogues you remember, reply with 20 movie recommendations "
    "for the conversation below, as a numbered list with one title per line."
)
DETECTIVE_PROMPT = "Using what you remember of the novel, answer the question below in the exact format it asks for."
FACT_PROMPT = (
    "You manage a pool of facts. Each fact carries a serial number, and a fact with a larger number is "
    "newer. When facts conflict, trust the newest one. Answer from the remembered facts only, not from "
    "world knowledge, and give only the answer."
)

MEMALPHA_SPLITS = ("train", "validation")


def unlicensed_copy(data_license: str) -> str:
    """Mem-alpha's processed releases declare no license of their own; the data keeps its own."""
    return combine("NOASSERTION", data_license)


def memalpha_release(source_name: str, data_license: str) -> Source:
    return Source(
        "release",
        "YuWangX/Memalpha",
        REVISIONS["YuWangX/Memalpha"],
        files=("train.parquet", "test.parquet"),
        license=unlicensed_copy(data_license),
        note=f"Mem-alpha's processed release; rows with data_source == {source_name!r}",
    )


def mab_hub(source_name: str, data_license: str | None) -> Source:
    """MemoryAgentBench's release (MIT), and the license of the dataset a set was derived from."""
    return Source(
        "hub",
        "ai-hyz/MemoryAgentBench",
        REVISIONS["ai-hyz/MemoryAgentBench"],
        license=combine("MIT", data_license) if data_license else "MIT",
        note=f"rows with metadata.source == {source_name!r}",
    )


def mab_release(source_name: str, data_license: str) -> Source:
    return Source(
        "release",
        "YuWangX/Memalpha-Memoryagentbench",
        REVISIONS["YuWangX/Memalpha-Memoryagentbench"],
        files=("test.parquet",),
        license=unlicensed_copy(data_license),
        note=f"Mem-alpha's processed MemoryAgentBench; rows with data_source == {source_name!r}",
    )


# ---------------------------------------------------------------- Mem-alpha training sources


def memalpha_task(
    name: str,
    description: str,
    competency: str,
    metric: str,
    builder: str,
    sources: tuple[Source, ...],
    *,
    release: str,
    chunk_size: int = 2048,
    splits: tuple[str, ...] = MEMALPHA_SPLITS,
    query_prompt: str | None = None,
    cite: str,
    **params: object,
) -> TaskSpec:
    """A Mem-alpha training source: train/validation splits, and Mem-alpha's processed release (rows
    whose `data_source` is `release`, under the license of the first source) as the last origin."""
    return register_task(
        TaskSpec(
            name=name,
            description=description,
            competency=competency,
            metric=metric,
            chunk_size=chunk_size,
            splits=splits,
            query_prompt=query_prompt,
            builder=builder,
            sources=(*sources, memalpha_release(release, sources[0].license)),
            citations=("memalpha", cite),
            params=params,
        )
    )


memalpha_task(
    "squad",
    "SQuAD paragraphs packed into 10 random-size chunks per instance, with the questions on them.",
    "AR",
    "substring_em",
    "tasks.sources.squad:build",
    (
        Source("hub", "rajpurkar/squad", REVISIONS["rajpurkar/squad"], config="plain_text", license="CC-BY-SA-4.0"),
        Source("raw", "squad", files=("*.json",), license="CC-BY-SA-4.0", note="SQuAD v1.1 JSON"),
    ),
    release="squad",
    cite="squad",
    chunks_per_instance=10,
    min_chunk_tokens=100,
    min_questions_before=50,
    min_questions=30,
    max_questions=100,
    max_answer_tokens=5,
    max_chunks=20,
)
memalpha_task(
    "hotpotqa",
    "HotpotQA supporting articles of consecutive questions packed into random-size chunks.",
    "AR",
    "substring_em",
    "tasks.sources.hotpotqa:build",
    (
        Source("hub", "hotpotqa/hotpot_qa", REVISIONS["hotpotqa/hotpot_qa"], config="fullwiki", license="CC-BY-SA-4.0"),
        Source(
            "raw",
            "hotpotqa",
            files=("*.json", "*.jsonl"),
            license="CC-BY-SA-4.0",
            note="HotpotQA JSON (official array or HF-style rows) or JSON lines",
        ),
    ),
    release="hotpotqa",
    cite="hotpotqa",
    instance_tokens=10000,
    min_chunk_tokens=100,
    min_questions_before=30,
    min_questions=10,
    max_questions=200,
    question_cap=100,
    max_answer_tokens=5,
    max_chunks=20,
)
memalpha_task(
    "perltqa",
    "PerLTQA: one instance per character, one chunk per life event with its dialogues.",
    "AR",
    "keyword_recall",
    "tasks.sources.perltqa:build",
    (Source("raw", "perltqa", files=("perltmem_en.json", "perltqa_en.json"), license="CC-BY-NC-4.0"),),
    release="perltqa",
    cite="perltqa",
    min_questions=20,
    max_questions=100,
    max_chunks=30,
)
memalpha_task(
    "lme_train",
    "LongMemEval-style chat histories (10k-30k tokens) with 4-5 personal-memory questions each.",
    "AR",
    "llm_judge",
    "tasks.sources.longmemeval:build_train",
    (
        Source(
            "hub",
            "xiaowu0162/longmemeval-cleaned",
            REVISIONS["xiaowu0162/longmemeval-cleaned"],
            files=("longmemeval_oracle.json",),
            license="MIT",
        ),
        Source("raw", "longmemeval", files=("longmemeval_oracle.json",), license="MIT"),
    ),
    release="lme_train",
    splits=("train",),
    cite="longmemeval",
    questions_per_instance=4,
    min_tokens=10000,
    max_tokens=30000,
    flush_tokens=1800,
)
memalpha_task(
    "booksum",
    "BookSum chapters read as dated reading events; one summary question, scored by keywords.",
    "LRU",
    "keyword_recall",
    "tasks.sources.booksum:build",
    (
        Source(
            "hub",
            "ubaada/booksum-complete-cleaned",
            REVISIONS["ubaada/booksum-complete-cleaned"],
            config="chapters",
            license="BSD-3-Clause",
        ),
        Source("raw", "booksum", files=("chapters/*.jsonl",), license="BSD-3-Clause"),
    ),
    release="booksum",
    query_prompt=SUMMARY_PROMPT,
    cite="booksum",
    min_chunks=5,
    max_chunks=20,
)
memalpha_task(
    "pubmed_rct",
    "PubMed-RCT sentence classification learned from 10 chunks of labelled sentences.",
    "TTL",
    "boxed_label_accuracy",
    "tasks.sources.pubmed_rct:build",
    (
        Source("hub", "pietrolesci/pubmed-200k-rct", REVISIONS["pietrolesci/pubmed-200k-rct"], license="NOASSERTION"),
        Source(
            "raw",
            "pubmed_rct",
            files=("train.txt",),
            license="NOASSERTION",
            note="PubMed-RCT .txt: ###id lines, LABEL<TAB>sentence lines, blank line between abstracts",
        ),
    ),
    release="pubmed-rct",
    query_prompt=LABEL_PROMPT,
    cite="pubmed_rct",
    instances=100,
    chunks_per_instance=10,
    min_chunk_tokens=1024,
    questions=100,
)
# The original built TREC-coarse and NLU as one source (`ttl_train`, in this order), split and capped together.
TTL_MERGED = ("ttl_trec_coarse", "ttl_nlu")
_TTL_SOURCES = {
    "trec": (
        # distributed freely for research by UIUC CogComp, with no formal license
        Source("raw", "trec", files=("train_5500.label",), license="NOASSERTION"),
        Source("hub", "CogComp/trec", REVISIONS["CogComp/trec"], license="NOASSERTION"),
    ),
    "nlu": (Source("raw", "nlu", files=("**/*.csv",), license="CC-BY-4.0"),),
}
for _name, _raw, _label_space, _tokens, _release in (
    ("ttl_trec_coarse", "trec", "coarse", 390, "icl_trec_coarse_6600shot_balance"),
    ("ttl_nlu", "nlu", "intent", 610, "icl_nlu_8296shot_balance"),
):
    memalpha_task(
        _name,
        f"Test-time learning on {_raw.upper()} ({_label_space} labels): 10 chunks of labelled examples, "
        "100 questions drawn from the source's own training data (never from MemoryAgentBench's test set).",
        "TTL",
        "boxed_label_accuracy",
        "tasks.sources.classification:build_ttl",
        _TTL_SOURCES[_raw],
        release=_release,
        chunk_size=1024,
        query_prompt=LABEL_PROMPT,
        cite=_raw,
        dataset=_raw,
        label_space=_label_space,
        merged=TTL_MERGED,
        instances=200,
        chunks_per_instance=10,
        chunk_tokens=_tokens,
        questions=100,
    )

# ---------------------------------------------------------------- MemoryAgentBench


def mab_task(
    name: str,
    mab_source: str,
    description: str,
    competency: str,
    metric: str,
    chunk_size: int,
    wrapper: str,
    *,
    query_prompt: str | None = None,
    released: bool = True,
    raw: Source | None = None,
    data: tuple[str, str] | None = None,
    **params: object,
) -> TaskSpec:
    """A MemoryAgentBench set: rows of the pinned hub release whose `metadata.source` is `mab_source`
    (plus Mem-alpha's processed copy for the sets the paper used, and raw files where they exist).
    `data` is (citation key, SPDX license) of the dataset the set was derived from, where known."""
    hub = mab_hub(mab_source, data[1] if data else None)
    sources = (hub,) + ((raw,) if raw else ()) + ((mab_release(mab_source, hub.license),) if released else ())
    return register_task(
        TaskSpec(
            name=name,
            description=description,
            competency=competency,
            metric=metric,
            chunk_size=chunk_size,
            query_prompt=query_prompt,
            builder="tasks.sources.mab:build",
            sources=sources,
            citations=("memoryagentbench", *((data[0],) if data else ())),
            params={"mab_source": mab_source, "wrapper": wrapper, **params},
        )
    )


mab_task(
    "ruler_qa1_197k",
    "ruler_qa1_197K",
    "RULER single-document QA over a 197k-token haystack (SQuAD-based).",
    "AR",
    "substring_em",
    2048,
    "documents",
    data=("squad", "CC-BY-SA-4.0"),
)
mab_task(
    "ruler_qa2_421k",
    "ruler_qa2_421K",
    "RULER multi-document QA over a 421k-token haystack (HotpotQA-based).",
    "AR",
    "substring_em",
    2048,
    "documents",
    data=("hotpotqa", "CC-BY-SA-4.0"),
)
mab_task(
    "longmemeval_s",
    "longmemeval_s*",
    "LongMemEval-S histories concatenated into 5 long dialogues, 60 questions each.",
    "AR",
    "llm_judge",
    2048,
    "sessions",
    data=("longmemeval", "MIT"),
)
for _name, _src, _license in (
    ("icl_banking77", "icl_banking77_5900shot_balance", "CC-BY-4.0"),
    ("icl_clinic150", "icl_clinic150_7050shot_balance", "CC-BY-3.0"),
    ("icl_nlu", "icl_nlu_8296shot_balance", "CC-BY-4.0"),
    ("icl_trec_coarse", "icl_trec_coarse_6600shot_balance", "NOASSERTION"),
    ("icl_trec_fine", "icl_trec_fine_6400shot_balance", "NOASSERTION"),
):
    _dataset = _name.removeprefix("icl_")
    _raw_id = {"trec_coarse": "trec", "trec_fine": "trec", "clinic150": "clinc150"}.get(_dataset, _dataset)
    _cite = {"trec_coarse": "trec", "trec_fine": "trec", "clinic150": "clinc150"}.get(_dataset, _dataset)
    mab_task(
        _name,
        _src,
        f"In-context classification ({_dataset}): thousands of labelled examples, then 100 queries.",
        "TTL",
        "boxed_label_accuracy",
        1024,
        "examples",
        query_prompt=LABEL_PROMPT,
        raw=Source("raw", _raw_id, license=_license, note="labelled examples from the source's own release files"),
        data=(_cite, _license),
        dataset=_dataset,
        shots=int(_src.split("_")[-2].removesuffix("shot")),
        questions=100,
    )
mab_task(
    "infbench_sum",
    "infbench_sum_eng_shots2",
    "InfiniteBench En.Sum: summarise a novel read chunk by chunk.",
    "LRU",
    "keyword_recall",
    2048,
    "book",
    query_prompt=SUMMARY_PROMPT,
)
# Beyond the paper: MemoryAgentBench's own chunk sizes (4096; 512 for FactConsolidation).
mab_task(
    "eventqa",
    "eventqa_full",
    "EventQA: name the next event in a novel (6-way choice).",
    "AR",
    "substring_em",
    4096,
    "book",
    query_prompt=EVENT_PROMPT,
    released=False,
)
mab_task(
    "recsys_redial",
    "recsys_redial_full",
    "Redial movie recommendation from remembered dialogues.",
    "TTL",
    "recall_at_5",
    4096,
    "dialogues",
    query_prompt=RECSYS_PROMPT,
    released=False,
)
mab_task(
    "detective_qa",
    "detective_qa",
    "DetectiveQA: reasoning questions over detective novels.",
    "LRU",
    "exact_match",
    4096,
    "book",
    query_prompt=DETECTIVE_PROMPT,
    released=False,
)
mab_task(
    "factconsolidation_sh",
    "factconsolidation_sh_262k",
    "FactConsolidation single-hop: answer from the newest of conflicting facts.",
    "CR",
    "substring_em",
    512,
    "facts",
    query_prompt=FACT_PROMPT,
    released=False,
)
mab_task(
    "factconsolidation_mh",
    "factconsolidation_mh_262k",
    "FactConsolidation multi-hop: chain the newest of conflicting facts.",
    "CR",
    "substring_em",
    512,
    "facts",
    query_prompt=FACT_PROMPT,
    released=False,
)

register_task(
    TaskSpec(
        name="locomo",
        description="LoCoMo: ten very long two-person conversations over many dated sessions.",
        competency="AR",
        metric="token_f1",
        chunk_size=2048,
        builder="tasks.sources.locomo:build",
        sources=(Source("raw", "locomo", files=("locomo10.json",), license="CC-BY-NC-4.0"),),
        citations=("locomo",),
    )
)

# ---------------------------------------------------------------- length scaling

SCALING_LENGTHS = (8, 16, 32, 64, 128, 256, 512)
for _k in SCALING_LENGTHS:
    register_task(
        TaskSpec(
            name=f"scaling_squad_{_k}k",
            description=f"The same 100 SQuAD questions over a {_k}k-token haystack of SQuAD paragraphs.",
            competency="AR",
            metric="substring_em",
            chunk_size=2048,
            builder="tasks.sources.scaling:build",
            sources=(
                Source(
                    "hub",
                    "rajpurkar/squad",
                    REVISIONS["rajpurkar/squad"],
                    config="plain_text",
                    license="CC-BY-SA-4.0",
                    note="validation split",
                ),
                Source("raw", "squad", files=("*.json",), license="CC-BY-SA-4.0"),
            ),
            citations=("memalpha", "squad"),
            params={"target_tokens": _k * 1024, "questions": 100},
        )
    )

# ---------------------------------------------------------------- suites

_MEMALPHA = (
    "squad",
    "hotpotqa",
    "perltqa",
    "lme_train",
    "booksum",
    "pubmed_rct",
    "ttl_trec_coarse",
    "ttl_nlu",
)
_MAB_PAPER = (
    "ruler_qa1_197k",
    "ruler_qa2_421k",
    "longmemeval_s",
    "icl_banking77",
    "icl_clinic150",
    "icl_nlu",
    "icl_trec_coarse",
    "icl_trec_fine",
    "infbench_sum",
)
_MAB_EXTRA = ("eventqa", "recsys_redial", "detective_qa", "factconsolidation_sh", "factconsolidation_mh")

register_suite(
    Suite(
        "memalpha-train",
        "The 8 Mem-alpha training sources, train splits.",
        tuple((t, "train") for t in _MEMALPHA),
    )
)
register_suite(
    Suite(
        "memalpha-val",
        "Mem-alpha validation splits (lme_train has none, as in the original).",
        tuple((t, "validation") for t in _MEMALPHA if t != "lme_train"),
    )
)
register_suite(
    Suite(
        "mab-paper",
        "The 9 MemoryAgentBench sets the Mem-alpha paper evaluates.",
        tuple((t, "test") for t in _MAB_PAPER),
    )
)
register_suite(
    Suite(
        "mab-full",
        "MemoryAgentBench: the paper's 9 sets plus EventQA, Redial, DetectiveQA, FactConsolidation.",
        tuple((t, "test") for t in _MAB_PAPER + _MAB_EXTRA),
    )
)
register_suite(
    Suite(
        "length-scaling",
        "The same SQuAD questions at 8k to 512k tokens of context.",
        tuple((f"scaling_squad_{k}k", "test") for k in SCALING_LENGTHS),
    )
)
register_suite(Suite("conversation", "Long multi-session conversations (LoCoMo).", (("locomo", "test"),)))
