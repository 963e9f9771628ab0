"""The reader prompt: template content, its hash, the budget rule."""

from __future__ import annotations

from benchmark.memory import Memory, MemoryEntry
from benchmark.prompting import ReaderPrompt
from tasks.tokenization import SimpleCounter

COUNTER = SimpleCounter()


def memory(n: int = 30) -> Memory:
    return Memory(
        "The user is reading about European capitals.",
        tuple(
            MemoryEntry(f"s{i}", f"Fact {i}: city number {i} has {i} bridges and {i * 3} museums.") for i in range(n)
        ),
        tuple(MemoryEntry(f"e{i}", f"Visited city {i}.", f"2024-01-{i + 1:02d}") for i in range(n)),
    )


def sizes(mem: Memory):
    return (
        COUNTER.count_many([e.content for e in mem.semantic]),
        COUNTER.count_many([e.content for e in mem.episodic]),
    )


def test_prompt_holds_core_ranked_semantic_and_chronological_episodic():
    mem = memory(5)
    built = ReaderPrompt().build(
        mem,
        [3, 1],
        [4, 0, 2],
        "How many bridges?",
        "Answer with a number.",
        counter=COUNTER,
        budget=30_000,
        entry_tokens=sizes(mem),
    )
    system, user = dict(built.messages)["system"], dict(built.messages)["user"]
    assert mem.core in system
    assert system.index("Fact 3:") < system.index("Fact 1:")  # semantic in rank order
    assert system.index("Visited city 0.") < system.index("Visited city 2.") < system.index("Visited city 4.")
    assert "[2024-01-05] Visited city 4." in system
    assert user == "Answer with a number.\n\nHow many bridges?"
    assert built.k == 3 and built.semantic == (3, 1) and built.episodic == (4, 0, 2)
    exact = sum(COUNTER.count_many([m for _, m in built.messages])) + 8
    assert abs(built.tokens - exact) <= 0.05 * exact


def test_empty_memory_renders_placeholders():
    built = ReaderPrompt().build(Memory(), [], [], "Q?", None, counter=COUNTER, budget=30_000, entry_tokens=((), ()))
    system = built.messages[0][1]
    assert "(empty)" in system and system.count("(no matching entries)") == 2
    assert built.messages[1][1] == "Q?"


def test_budget_shrinks_k_until_the_prompt_fits():
    mem = memory(30)
    rank = list(range(20))
    full = ReaderPrompt().build(mem, rank, rank, "Q?", None, counter=COUNTER, budget=30_000, entry_tokens=sizes(mem))
    assert full.k == 20
    budget = full.tokens - 100
    small = ReaderPrompt().build(mem, rank, rank, "Q?", None, counter=COUNTER, budget=budget, entry_tokens=sizes(mem))
    assert small.tokens <= budget and small.k < 20
    # one more entry would not have fitted
    plus_one = ReaderPrompt().render(
        mem.core,
        [mem.semantic[i] for i in rank[: small.k + 1]],
        [mem.episodic[i] for i in sorted(rank[: small.k + 1])],
        "Q?",
        None,
    )
    assert sum(COUNTER.count_many([m for _, m in plus_one])) + 8 > budget


def test_core_is_cut_when_nothing_else_fits():
    mem = Memory("word " * 5000, (), ())
    built = ReaderPrompt().build(mem, [], [], "Q?", None, counter=COUNTER, budget=1000, entry_tokens=((), ()))
    assert built.core_truncated and built.tokens <= 1000


def test_template_hash_is_stable_and_versioned():
    a, b = ReaderPrompt(), ReaderPrompt()
    assert a.sha256 == b.sha256 and len(a.sha256) == 64 and a.version == "v2"  # the default profile's
    assert len({ReaderPrompt(v).sha256 for v in ("v1", "v2", "paper")}) == 3
