"""The reader prompt: template content, its hash, the budget rule."""

from __future__ import annotations

import hashlib

import pytest

from benchmark.memory import Memory, MemoryEntry
from benchmark.memory_tokens import MemoryTokens
from benchmark.profiles import get_profile
from benchmark.prompting import BuiltPrompt, ReaderPrompt
from tasks.errors import TaskError
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
    """Entry sizes as the scorer counts them (MemoryTokens): with their timestamps."""
    tokens = MemoryTokens.count(mem, COUNTER)
    return tokens.semantic, tokens.episodic


def five_entry_prompt(prompt: ReaderPrompt) -> tuple[Memory, BuiltPrompt, str, str]:
    """A memory of 5 entries per type, 2 semantic and 3 episodic ones retrieved, a query prompt."""
    mem = memory(5)
    built = prompt.build(
        mem,
        [3, 1],
        [4, 0, 2],
        "How many bridges?",
        "Answer with a number.",
        counter=COUNTER,
        budget=30_000,
        entry_tokens=sizes(mem),
    )
    return mem, built, dict(built.messages)["system"], dict(built.messages)["user"]


def test_prompt_holds_core_ranked_semantic_and_chronological_episodic():
    mem, built, system, user = five_entry_prompt(ReaderPrompt())
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


PAPER = ReaderPrompt.for_profile(get_profile("memalpha-paper"))


def test_paper_prompt_keeps_the_originals_sections_order_and_rank_ordered_episodes():
    _, _, system, user = five_entry_prompt(PAPER)
    assert user == "Answer with a number.\n\nHow many bridges?"  # query prompt, blank line, question
    marks = ["MEMORY LAYOUT:", "- Core memory:", "MEMORY CONTENTS:", "<core_memory>", "<semantic_memory>"]
    marks += ["1. Fact 3:", "2. Fact 1:", "<episodic_memory>", "GUIDELINES:", "concise, yet comprehensive"]
    assert [system.index(m) for m in marks] == sorted(system.index(m) for m in marks)
    # episodic entries in rank order (the original's), not by time
    assert system.index("Visited city 4.") < system.index("Visited city 0.") < system.index("Visited city 2.")
    empty = PAPER.build(Memory(), [], [], "Q?", None, counter=COUNTER, budget=30_000, entry_tokens=((), ()))
    system = empty.messages[0][1]
    assert "core" not in system.lower() and system.count("(no memories stored)") == 2
    assert empty.messages[1][1] == "Q?"


def test_paper_budget_counts_the_system_message_and_the_original_floor_is_k_1():
    mem = memory(30)
    rank = list(range(20))
    full = PAPER.build(mem, rank, rank, "Q?", None, counter=COUNTER, budget=30_000, entry_tokens=sizes(mem))
    system_tokens = COUNTER.count(full.messages[0][1])
    long_question = "word " * 100
    kept = PAPER.build(
        mem, rank, rank, long_question, None, counter=COUNTER, budget=system_tokens, entry_tokens=sizes(mem)
    )
    assert kept.k == 20 and not kept.over_floor  # the question does not count
    ours = ReaderPrompt().build(
        mem, rank, rank, long_question, None, counter=COUNTER, budget=system_tokens, entry_tokens=sizes(mem)
    )
    assert ours.k < 20  # v1 counts the whole prompt
    one = PAPER.build(mem, rank, rank, "Q?", None, counter=COUNTER, budget=system_tokens, entry_tokens=sizes(mem))
    small = PAPER.build(
        mem, rank, rank, "Q?", None, counter=COUNTER, budget=system_tokens - 60, entry_tokens=sizes(mem)
    )
    assert one.k == 20 and 0 < small.k < 20 and not small.over_floor
    base = COUNTER.count(PAPER.render(mem.core, [], [], "Q?", None)[0][1])
    below = PAPER.build(mem, rank, rank, "Q?", None, counter=COUNTER, budget=base + 5, entry_tokens=sizes(mem))
    assert below.k == 0 and below.over_floor  # the original raised here: no k >= 1 fits


def test_a_template_file_of_ones_own(tmp_path):
    path = tmp_path / "original.jinja"
    path.write_text(
        "{% block system %}MEMORY {{ core }}{% for e in semantic %} [{{ e.content }}]{% endfor %} for {{ task }}"
        "{% endblock %}{% block user %}{% if task == 'squad' %}Be exact.\n\n{% endif %}{{ question }}{% endblock %}",
        encoding="utf-8",
    )
    prompt = ReaderPrompt.for_profile(get_profile("memalpha-paper"), path)
    mem = memory(3)
    built = prompt.build(
        mem, [2], [], "Q?", None, counter=COUNTER, budget=30_000, entry_tokens=sizes(mem), task="squad"
    )
    assert dict(built.messages) == {
        "system": f"MEMORY {mem.core} [Fact 2: city number 2 has 2 bridges and 6 museums.] for squad",
        "user": "Be exact.\n\nQ?",
    }
    assert prompt.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prompt.describe() == {"name": "reader_file:original.jinja", "sha256": prompt.sha256, "file": str(path)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{% block system %}x{% endblock %}", r"no \{% block user %\}"),
        (
            "{% block system %}{% if %}{% endblock %}{% block user %}{% endblock %}",
            r"original\.jinja, line 1: not a valid",
        ),
        (
            "{% block system %}{{ nope }}{% endblock %}{% block user %}q{% endblock %}",
            r"block 'system': 'nope' is undefined",
        ),
    ],
)
def test_a_bad_template_file_is_named(tmp_path, text, message):
    path = tmp_path / "original.jinja"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TaskError, match=message):
        ReaderPrompt(template_file=path).render("", [], [], "Q?", None)


@pytest.mark.parametrize("prompt", [ReaderPrompt(), PAPER], ids=["v1", "paper"])
def test_a_built_prompt_never_exceeds_its_budget(prompt):
    """Timestamped episodic entries included: the size estimate must not let a prompt past the budget."""
    mem, rank = memory(30), list(range(20))
    for budget in range(300, 1500, 29):
        built = prompt.build(mem, rank, rank, "Q?", None, counter=COUNTER, budget=budget, entry_tokens=sizes(mem))
        system, user = (m for _, m in built.messages)
        counted = COUNTER.count(system) if prompt is PAPER else COUNTER.count(system) + COUNTER.count(user) + 8
        assert counted <= budget, (budget, built.k)


@pytest.mark.parametrize("profile", ["v1", "memalpha-paper"])
def test_under_a_real_bpe_a_prompt_sized_from_memory_counts_never_exceeds_its_budget(qwen_bpe, profile):
    """Entry sizes come from one count per entry (content, and its `[timestamp] ` apart); under a BPE the
    count of a joined prompt is not the sum of its parts, so the exact check near the budget must hold it."""
    prompt = ReaderPrompt.for_profile(get_profile(profile))
    mem = Memory(
        "Bob is a chemist in Zürich; his sister Ana lives in São Paulo.",
        tuple(
            MemoryEntry(f"s{i}", f"Fact {i}: the café “Nº{i}” serves {i * 7} crêpes a day — très bien!")
            for i in range(25)
        ),
        tuple(
            MemoryEntry(f"e{i}", f"Met Ana at 10:{i:02d} (trip #{i}).", f"2024-03-{i + 1:02d} 09:00") for i in range(25)
        ),
    )
    tokens = MemoryTokens.count(mem, qwen_bpe)
    assert tokens.size == sum(qwen_bpe.count_many(mem.texts()))
    rank = list(range(20))
    fitted = 0
    for budget in range(200, 1400, 37):
        built = prompt.build(
            mem,
            rank,
            rank,
            "Where does Ana live?",
            "Answer briefly.",
            counter=qwen_bpe,
            budget=budget,
            entry_tokens=(tokens.semantic, tokens.episodic),
        )
        system, user = (m for _, m in built.messages)
        counted = (
            qwen_bpe.count(system) if profile == "memalpha-paper" else qwen_bpe.count(system) + qwen_bpe.count(user) + 8
        )
        assert counted <= budget, (budget, built.k)
        fitted += 0 < built.k < 20
    assert fitted > 5  # the budget cut through the entries, not only around them
