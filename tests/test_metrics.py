"""Answer metrics: the cases from the reference notes, the original scorers' bugs, and edge cases."""

from __future__ import annotations

import pytest

from benchmark.metrics import (
    JUDGE_METRIC,
    METRIC_FUNCTIONS,
    boxed_label_accuracy,
    exact_match,
    judge_prompt,
    keyword_recall,
    keywords_of,
    last_boxed,
    normalize_answer,
    parse_judge_verdict,
    parse_output,
    recall_at_5,
    recommendations,
    rouge_l,
    score,
    strip_think,
    substring_em,
    token_f1,
)
from tasks.registry import METRICS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Eiffel Tower.", "eiffel tower"),
        ("  An   apple,  a day!  ", "apple day"),
        ("Theatre the", "theatre"),  # only whole-word articles go
        ("U.S.A.", "usa"),
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>Paris or Lyon?</think>\n\nParis", "Paris"),
        ("reasoning with the tag pre-filled</think> Paris", "Paris"),
        ("<think>still thinking when the budget ran out", ""),
        ("<think>a</think> b <think> c", ""),  # a stray open tag after the block: no answer
        ("<think>a</think>b</think> c ", "c"),  # two closing tags: the answer follows the last
        ("<think>a</think>\n<think>b</think>\nParis", "Paris"),  # two whole blocks
        ("<think></think>Paris", "Paris"),
        ("Paris</think>", ""),  # nothing after the last closing tag
        ("</think>", ""),
        ("Paris <think>", ""),  # an open tag with no close: generation stopped mid-reasoning
        ("  Paris  ", "Paris"),
        ("Paris", "Paris"),
        ("", ""),
    ],
)
def test_strip_think(text, expected):
    assert strip_think(text) == expected


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Let me see.\nAnswer: Paris\nbecause...", "Paris"),
        ("final answer:  Lyon", "Lyon"),
        ("Answer:\nMarseille", "Marseille"),
        ("\n\nNice\nmore text", "Nice"),
    ],
)
def test_parse_output(prediction, expected):
    assert parse_output(prediction) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("It is Eiffel tower.", ["the Eiffel Tower"], 1.0),
        ("The tower in Paris.", ["Eiffel Tower"], 0.0),
        ("I think it is Normandy.", ["France", "normandy"], 1.0),  # max over golds
        ("Answer: 1066\nOr maybe not.", ["1066"], 1.0),
        ("anything at all", ["the", "!!"], 0.0),  # a gold that normalises to "" never matches
        ("", ["Paris"], 0.0),
    ],
)
def test_substring_em(prediction, answers, expected):
    assert substring_em(prediction, answers) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("The Eiffel Tower!", ["eiffel tower"], 1.0),
        ("It is the Eiffel Tower", ["eiffel tower"], 0.0),
        ("Let me think.\nAnswer: B. Smith", ["b smith"], 1.0),  # parsed output
        ("Cairo\nThe capital of Egypt.", ["Cairo"], 1.0),  # first line
        ("label: 43", ["43"], 0.0),  # strict, as MAB's exact match
    ],
)
def test_exact_match(prediction, answers, expected):
    assert exact_match(prediction, answers) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("no", ["yes"], 0.0),
        ("yes", ["yes"], 1.0),
        ("Yes.", ["yes"], 1.0),
        ("yes it is", ["yes"], 0.0),  # a yes/no gold needs an exact yes/no
        ("noanswer", ["no answer"], 0.0),
        ("the big red dog", ["red dog"], 0.8),  # "big red dog" vs "red dog": P 2/3, R 1, F1 4/5
        ("cat", ["dog", "the cat"], 1.0),
        ("", ["cat"], 0.0),
    ],
)
def test_token_f1(prediction, answers, expected):
    assert token_f1(prediction, answers) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{\text{3}}", r"\text{3}"),
        (r"\boxed{3} then \boxed{4}", "4"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{3} and a truncated \boxed{\text{4}", "3"),  # the last box never closes
        ("no box here", None),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        (r"The label is \boxed{\text{3}}.", ["3"], 1.0),
        (r"First \boxed{3} then \boxed{4}", ["4"], 1.0),
        (r"First \boxed{3} then \boxed{4}", ["3"], 0.0),
        (r"\boxed{label: 43}", ["43"], 1.0),
        (r"\boxed{'43'}", ["43"], 1.0),
        (r"\boxed{ \textbf{label: 7} }", ["7"], 1.0),
        ("43", ["43"], 1.0),  # no box: a bare integer counts
        ("  label: 43 ", ["43"], 1.0),
        ("The label is 43.", ["43"], 0.0),  # no box and not a bare integer
        (r"\boxed{13}", ["3"], 0.0),  # MAB's substring scoring let "3" match "13"
        ("13", ["3"], 0.0),
        (r"\boxed{boxed3}", ["3"], 0.0),
        (r"\boxed{5}", ["2", "5"], 1.0),  # any gold label
        (r"\boxed{}", ["3"], 0.0),
    ],
)
def test_boxed_label_accuracy(prediction, answers, expected):
    assert boxed_label_accuracy(prediction, answers) == expected


@pytest.mark.parametrize(
    "answers",
    [
        ["war, peace, Napoleon"],
        ["war,peace,Napoleon"],
        ["war; peace ;Napoleon"],
        ["war, peace; Napoleon"],
        "war,peace, Napoleon",
        ["War", "peace", "napoleon", "war"],
    ],
)
def test_keywords_split_on_any_separator(answers):
    assert keywords_of(answers) == ["war", "peace", "napoleon"]


def test_keyword_list_items_are_not_split():
    assert keywords_of(["Washington, D.C.", "Lincoln"]) == ["washington dc", "lincoln"]


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("Napoleon invades Russia; WAR follows.", ["war, peace, Napoleon"], 2 / 3),
        ("napoleon, peace and war", ["war;peace;Napoleon"], 1.0),
        ("Nothing relevant.", ["war", "peace"], 0.0),
        ("The U.S. Army marched.", ["us army"], 1.0),  # normalised on both sides
        ("Anything", [" , ; "], 0.0),  # no keyword survives
    ],
)
def test_keyword_recall(prediction, answers, expected):
    assert keyword_recall(prediction, answers) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("The cat sat on the mat.", ["the cat sat on the mat"], 1.0),
        ("dogs bark loudly", ["the cat sat"], 0.0),
        ("the cat sat on the mat", ["the cat is on the mat"], 5 / 6),  # LCS "the cat on the mat"
        ("a b c d", ["a c e"], 4 / 7),  # LCS 2: P 2/4, R 2/3, F 2PR/(P+R) = 4/7
        ("a b c d", ["x", "a c e"], 4 / 7),  # max over golds
        ("", ["a"], 0.0),
    ],
)
def test_rouge_l(prediction, answers, expected):
    assert rouge_l(prediction, answers) == pytest.approx(expected)


NUMBERED = """Here are some movies you might enjoy:
1. Inception (2010)
2. The Dark Knight (2008)
3. **Heat** (1995) - a heist classic
4. Alien (1979)
5. Toy Story (1995)
6. Up (2009)
"""


def test_recommendations_parse_numbered_lists_skipping_the_preamble():
    assert recommendations(NUMBERED) == [
        "inception",
        "dark knight",
        "heat heist classic",
        "alien",
        "toy story",
        "up",
    ]


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Inception (2010)\nHeat\n", ["inception", "heat"]),
        ("Inception, Heat (1995), Alien", ["inception", "heat", "alien"]),
        ("- Inception\n- Heat", ["inception", "heat"]),
        ("2001: A Space Odyssey (1968)\nHeat", ["2001 space odyssey", "heat"]),
    ],
)
def test_recommendations_other_formats(prediction, expected):
    assert recommendations(prediction) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        (NUMBERED, ["Inception (2010)", "Heat (1995)"], 1.0),
        (NUMBERED, ["Inception (2010)", "Up (2009)"], 0.5),  # Up is sixth
        (NUMBERED, ["Jaws (1975)", "Heat"], 0.5),
        (NUMBERED, ["Dark Knight"], 1.0),
        (NUMBERED, ["Heat"], 1.0),  # the gold is a whole-word part of "heat heist classic"
        ("Star Wars, Alien", ["Star Wars: Episode IV - A New Hope (1977)"], 1.0),  # and the other way
        ("Toy Story 2, Alien", ["Toy Story (1995)"], 1.0),  # documented leniency: a sequel matches
        ("Alienated", ["Alien"], 0.0),  # whole words only
        ("", ["Heat"], 0.0),
    ],
)
def test_recall_at_5(prediction, answers, expected):
    assert recall_at_5(prediction, answers) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Yes.", 1.0),
        ("yes", 1.0),
        ("**YES**, the response is correct.", 1.0),
        ("no", 0.0),
        ("No, it is not.", 0.0),
        ("I do not know", 0.0),  # "not"/"know" are not a "no" and there is no "yes"
        ("Not sure, but I know it is yes", 1.0),
        ("<think>yes maybe</think> No", 0.0),
        ("<think>yes, clearly", 0.0),  # unterminated reasoning: no verdict
        ("", 0.0),
        ("yesterday", 0.0),
    ],
)
def test_parse_judge_verdict(reply, expected):
    assert parse_judge_verdict(reply) == expected


JUDGE_CASES = [
    ("single-session-user", ""),
    ("temporal-reasoning", ""),
    ("knowledge-update", ""),
    ("single-session-preference", ""),
    ("multi-session", "q7_abs"),
]


@pytest.mark.parametrize(("question_type", "question_id"), JUDGE_CASES)
def test_judge_prompt_holds_question_gold_and_response(question_type, question_id):
    messages = judge_prompt(
        "How many days did the trip last?",
        ["19 days"],
        "<think>hmm</think>It lasted 18 days.",
        question_type,
        question_id=question_id,
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "How many days did the trip last?" in user
    assert "19 days" in user
    assert "It lasted 18 days." in user
    assert "hmm" not in user  # the response is judged without its reasoning
    assert user.rstrip().endswith("Reply yes or no.")


def test_judge_prompts_differ_by_question_type():
    def user(question_type: str | None, question_id: str = "") -> str:
        return judge_prompt("Q?", ["A"], "R", question_type, question_id=question_id)[1]["content"]

    prompts = {
        "plain": user("single-session-user"),
        "temporal": user("temporal-reasoning"),
        "update": user("knowledge-update"),
        "preference": user("single-session-preference"),
        "abstention": user("single-session-user", "abc_abs"),
    }
    assert len(set(prompts.values())) == len(prompts)
    assert "off-by-one" in prompts["temporal"]
    assert "older information" in prompts["update"]
    assert "Rubric: A" in prompts["preference"]
    assert "cannot answer" in prompts["abstention"]
    # the plain correctness rule serves the other plain types and questions without a type
    assert user("single-session-assistant") == user("multi-session") == user(None) == prompts["plain"]


def test_judge_prompt_lists_several_golds_and_rejects_unknown_types():
    user = judge_prompt("Q?", ["Paris", "Lyon"], "R", None)[1]["content"]
    assert "- Paris\n- Lyon" in user
    with pytest.raises(ValueError, match="no judge rule"):
        judge_prompt("Q?", ["A"], "R", "multi-hop")


def test_every_registry_metric_is_computed_here_or_judged():
    assert set(METRIC_FUNCTIONS) | {JUDGE_METRIC} == set(METRICS)
    assert JUDGE_METRIC not in METRIC_FUNCTIONS


@pytest.mark.parametrize(
    ("metric", "prediction", "answers", "expected"),
    [
        ("substring_em", "<think>It is Lyon.</think>It is Paris.", ["Paris"], 1.0),
        ("substring_em", "<think>Paris, surely", ["Paris"], 0.0),  # unterminated: no answer
        ("boxed_label_accuracy", r"<think>\boxed{2}</think>\boxed{5}", ["5"], 1.0),
        ("exact_match", "Paris", ["paris"], 1.0),
        ("recall_at_5", "1. Heat (1995)", ["Heat"], 1.0),
    ],
)
def test_score_dispatches_after_stripping_think(metric, prediction, answers, expected):
    assert score(metric, prediction, answers) == expected


def test_score_rejects_the_judge_metric_and_unknown_names():
    with pytest.raises(ValueError, match="judge model"):
        score(JUDGE_METRIC, "yes", ["yes"])
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        score("bleu", "x", ["x"])


@pytest.mark.parametrize("metric", sorted(METRIC_FUNCTIONS))
def test_metrics_refuse_an_empty_gold_list_and_stay_in_range(metric):
    with pytest.raises(ValueError, match="no gold answers"):
        METRIC_FUNCTIONS[metric]("anything", [])
    for prediction in ("", "Paris", r"\boxed{1}", "1. Heat\n2. Alien", "yes"):
        assert 0.0 <= METRIC_FUNCTIONS[metric](prediction, ["Paris", "1", "Heat"]) <= 1.0


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("Sports", ["sports"], 0.0),  # no box and not a bare integer: not an answer
        ("\\boxed{Sports}", ["sports"], 1.0),  # a boxed word label counts
        ('\\boxed{"label: 3"}', ["3"], 1.0),  # quotes around the whole label, then its "label:" lead
        ('\\boxed{label: "3"}', ["3"], 1.0),  # quotes left after the lead
    ],
)
def test_boxed_labels_with_quotes_leads_and_words(prediction, answers, expected):
    assert boxed_label_accuracy(prediction, answers) == expected


def test_edge_texts_and_exact_messages():
    assert parse_output("") == "" and parse_output("\n   \n") == ""
    assert recall_at_5("Alien, The Dark Knight", ["The Dark Knight"]) == 1.0  # one line: items split at commas
    with pytest.raises(ValueError, match=r"^no gold answers to score against$"):
        recall_at_5("x", [])
    user = judge_prompt("Q?", ["Paris", "Lyon"], "R", None)[1]["content"]
    assert "Expected answer: any one of:\n- Paris\n- Lyon\n\n" in user
    with pytest.raises(ValueError, match=r"reads the reply with parse_judge_verdict\(\)$"):
        score(JUDGE_METRIC, "yes", ["yes"])


def test_token_f1_where_precision_and_recall_differ_from_one():
    assert token_f1("paris france", ["paris lyon"]) == 0.5  # p = r = 1/2
    assert token_f1("paris lyon nice", ["paris marseille"]) == pytest.approx(0.4)  # 2 · 1/3 · 1/2 / (5/6)


def test_recall_at_5_without_a_usable_gold_title_is_zero():
    assert recall_at_5("Heat", ["(1995)"]) == 0.0  # the gold is only a year in parentheses: no title


def test_a_one_line_answer_is_split_at_commas_not_spaces():
    assert recommendations("Blade Runner, Heat") == ["blade runner", "heat"]


def test_the_judge_gets_a_system_message_then_the_user_message():
    messages = judge_prompt("Where?", ["Lyon"], "Lyon", None)
    assert [sorted(m) for m in messages] == [["content", "role"], ["content", "role"]]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith("You check answers for a memory benchmark.")
    assert "Lyon" in messages[1]["content"] and "Lyon" not in messages[0]["content"]
