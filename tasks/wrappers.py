"""How source text is presented to the agent, chunk by chunk (our own wording).

The information carried is the original's: a date stamp per chunk, who speaks (user / assistant),
and, for reading tasks, that the user is reading a book on that day. Template choices are drawn from
a seeded RNG so a rebuild gives the same text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from itertools import islice

START_DATE = datetime(2024, 1, 1)

USER_SHARE_LINES = (
    "Here is something I read today, please keep it in mind:",
    "I'd like you to remember the following passage:",
    "Please take note of this text for later:",
    "I came across this material and want you to hold on to it:",
    "Keep the following information for me:",
    "Here are some notes I want you to store:",
    "Could you remember what this says? Here it is:",
    "I'm sharing a document with you; please memorise it:",
)
ASSISTANT_ACK_LINES = (
    "Got it, I've noted all of that.",
    "Thanks, I'll keep this in mind for later.",
    "Understood. I have stored this information.",
    "Noted. Ask me about it whenever you like.",
    "All right, I'll remember this passage.",
    "Done, this is saved in my memory.",
)
USER_EXAMPLE_LINES = (
    "Here are some labelled examples. Learn how sentences map to labels:",
    "Study these sentences and their labels; I will ask you to classify new ones:",
    "Below are examples with their labels. Please learn the labelling rules:",
    "Take these labelled samples and remember how each label is used:",
)
ASSISTANT_EXAMPLE_ACK_LINES = (
    "I've studied these examples and the labels they map to.",
    "Understood, I have learned from these labelled samples.",
    "Thanks, I'll use these examples to classify new sentences.",
)

BOILERPLATE_LINES = frozenset(USER_SHARE_LINES + ASSISTANT_ACK_LINES + USER_EXAMPLE_LINES + ASSISTANT_EXAMPLE_ACK_LINES)
# Header and footer lines of the wrappers below; `overlap` ignores them when it compares passages.
BOILERPLATE_PATTERNS = (
    re.compile(r"^\[(Conversation|Chat session|Reading log|Dialogue)\b.*\]$"),
    re.compile(r"^<System> Remember what the user read on .*$"),
    re.compile(r"^<(User|Assistant)> ?$"),
)


def chunk_dates(n: int, rng: random.Random | None = None, *, min_days: int = 1, max_days: int = 1) -> list[str]:
    """Dates of `n` consecutive chunks: one day apart, or a random 1..3 days when `rng` is given."""
    return list(islice(date_stream(rng, min_days=min_days, max_days=max_days), n))


def date_stream(rng: random.Random | None = None, *, min_days: int = 1, max_days: int = 1) -> Iterator[str]:
    """The stamps of `chunk_dates`, without knowing the number of chunks in advance (drawn as needed)."""
    day = START_DATE
    while True:
        yield day.strftime("%Y-%m-%d %H:%M")
        day += timedelta(days=rng.randint(min_days, max_days) if rng else 1)


def date_for(index: int) -> str:
    """The stamp of chunk `index` in the one-day-apart scheme."""
    return (START_DATE + timedelta(days=index)).strftime("%Y-%m-%d %H:%M")


def dialogue(body: str, stamp: str, rng: random.Random) -> str:
    """A passage shared by the user in a dated conversation, acknowledged by the assistant."""
    user = rng.choice(USER_SHARE_LINES)
    assistant = rng.choice(ASSISTANT_ACK_LINES)
    return f"[Conversation between the user and the assistant, {stamp}]\n<User> {user}\n{body}\n<Assistant> {assistant}"


def examples(body: str, stamp: str, rng: random.Random) -> str:
    """Labelled examples shared by the user in a dated conversation (classification tasks)."""
    user = rng.choice(USER_EXAMPLE_LINES)
    assistant = rng.choice(ASSISTANT_EXAMPLE_ACK_LINES)
    header = f"[Conversation between the user and the assistant, {stamp}]"
    return f"{header}\n<User> {user}\n\n{body}\n<Assistant> {assistant}"


def reading(body: str, stamp: str) -> str:
    """A dated reading event: what the user read that day, and the instruction to keep track of it."""
    return (
        f"[Reading log, {stamp}: the user is reading a book]\n<User> {body}\n\n"
        f"<System> Remember what the user read on {stamp}: keep the details of the book and an "
        "up-to-date summary of the story so far."
    )


def chat_session(turns: list[tuple[str, str]], stamp: str | None) -> str:
    """One chat session rendered with speaker roles; `turns` are (role, text) with role user/assistant."""
    header = f"[Chat session, {stamp}]" if stamp else "[Chat session]"
    return "\n".join([header, *(chat_turn(role, text) for role, text in turns)])


def chat_turn(role: str, text: str) -> str:
    """One line of a chat session: the speaker tag, then what they said."""
    tag = "User" if role == "user" else "Assistant" if role == "assistant" else role
    return f"<{tag}> {text}"


def shared_photo(caption: str) -> str:
    """A photo shared in a conversation, given by its caption (the image itself is not in the text)."""
    return f"[shares a photo: {caption}]"


def conversation_session(
    speakers: Sequence[str], number: int, stamp: str, body: str, *, continued: bool = False
) -> str:
    """One dated session of a long conversation between named people; `body` holds `chat_turn` lines."""
    more = ", continued" if continued else ""
    return f"[Conversation session {number} between {' and '.join(speakers)}, {stamp}{more}]\n{body}"


def life_event(name: str, when: str | None, body: str, *, continued: bool = False) -> str:
    """A remembered event in the life of `name`, with the dialogues about it (PerLTQA)."""
    time = f", {when}" if when else ""
    more = ", continued" if continued else ""
    return f"[A memory of {name}{time}{more}]\n{body}"


def event_account(summary: str, content: str) -> str:
    """What happened in a life event: its short title, then the full account."""
    return f"Event: {summary}\n{content}" if summary else content


def dated_dialogue(stamp: str, lines: Sequence[str]) -> str:
    """One dialogue with its time stamp; `lines` are `chat_turn` lines."""
    return "\n".join([f"[Dialogue on {stamp}]", *lines])


def labelled(sentence: str, label: str) -> str:
    """One classification example line pair."""
    return f"Sentence: {sentence}\nLabel: {label}"


def label_question(sentence: str) -> str:
    return f"Sentence: {sentence}\nWhich label does this sentence have? Give your final answer as \\boxed{{label}}."
