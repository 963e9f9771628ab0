"""`leaderboard render`: leaderboard.md (tabulate) and a static HTML site (jinja2, autoescaped) from the
results store and the seeds.

Output is deterministic: the same records give byte-identical files (sorted inputs, fixed number
formats, no timestamps). The site works offline from the file system: a small vanilla JS sorter, no
CDN, plots as inline SVG computed here.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from tabulate import tabulate

from benchmark.profiles import get_profile

from .boards import Board
from .plot import Plot, scatter, tokens_label
from .ranking import ranked_boards

TEMPLATES = Path(__file__).parent / "templates"
ASSETS = ("sort.js", "style.css")
COMPETENCY_NAMES = {
    "AR": "accurate retrieval",
    "TTL": "test-time learning",
    "LRU": "long-range understanding",
    "CR": "conflict resolution",
}
MARKS = {"reported": "R", "contaminated": "C", "unstated": "?"}
_MD_PUNCT = re.compile(r"([\\`*_\[\]|#])")


@dataclass(frozen=True)
class BoardView:
    board: Board
    entries: list[dict[str, Any]]
    plot: Plot | None


def score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def tokens(value: float | None) -> str:
    return "" if value is None else tokens_label(value)


def md_text(text: str) -> str:
    """Text safe in a markdown table cell: no markup, links, emphasis or cell breaks."""
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCT.sub(r"\\\1", text)


def marks(entry: dict[str, Any]) -> str:
    out = []
    if entry["status"] == "reported":
        out.append(MARKS["reported"])
    possible = entry["contamination"]["possible"]
    if possible:
        out.append(MARKS["contaminated"])
    elif possible is None:
        out.append(MARKS["unstated"])
    return " ".join(out)


def sources(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct sources of reported entries, in a fixed order."""
    seen = {e["source"]["citation"]: e["source"] for e in entries if e.get("source")}
    return [seen[c] for c in sorted(seen)]


def markdown(views: list[BoardView]) -> str:
    cited = sources(e for v in views for e in v.entries)
    refs = {s["citation"]: i for i, s in enumerate(cited, 1)}
    lines = [
        "# memalpha-bench leaderboard",
        "",
        RANKING_RULE,
        "",
        f"Marks: {MARKS['reported']} reported by its source, not re-scored by us (source in brackets); "
        f"{MARKS['contaminated']} possibly contaminated (trained on data the board evaluates); "
        f"{MARKS['unstated']} training data not stated.",
        "",
    ]
    for view in views:
        comps = view.board.competencies
        plain = "mean_of_tasks" in view.board.averages
        headers = ["rank", "agent", "version", "model", "params", "overall", *comps, "memory (tokens)", "marks"]
        if plain:
            headers.insert(6, "mean of tasks")
        rows = []
        for rank, e in enumerate(view.entries, 1):
            ref = f" [{refs[e['source']['citation']]}]" if e.get("source") else ""
            agent = e["agent"]
            rows.append(
                [
                    rank,
                    md_text(agent["name"]),
                    md_text(agent["version"]),
                    md_text(e["model"]),
                    md_text(e["parameters"]),
                    score(e["scores"]["overall"]),
                    *([score(plain_mean(e))] if plain else []),
                    *(score(e["scores"]["competencies"].get(c)) for c in comps),
                    tokens(e.get("memory_tokens")),
                    marks(e) + ref,
                ]
            )
        lines += [
            f"## {view.board.name} (profile {view.board.profile})",
            "",
            md_text(view.board.description) + " " + profile_note(view.board),
            "",
            tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True),
            "",
        ]
    if cited:
        lines += ["## Sources", ""]
        lines += [
            f"{i}. {md_text(s['citation'])}, {md_text(s['tables'])}: <{s['url']}>" for i, s in enumerate(cited, 1)
        ]
        lines.append("")
    return "\n".join(lines)


RANKING_RULE = (
    "Every board is bound to one scorer profile: entries scored with different profiles are never ranked "
    "together, and numbers reported by a paper sit only on memalpha-paper boards. Entries are ranked on "
    "the board they were submitted for by overall score (the mean over competencies of the mean over "
    "tasks), then by smaller memory, then by name. Reported entries are shown with the source's per-task "
    "numbers, aggregated by the same rule; memalpha-paper boards also show the plain mean of the task "
    "scores, the rule of Mem-α's Avg. columns."
)


def plain_mean(entry: dict[str, Any]) -> float | None:
    """The plain mean of tasks of an entry (Mem-α's Avg. columns), None where the record has none."""
    return entry["scores"].get("averages", {}).get("mean_of_tasks")


def profile_note(board: Board) -> str:
    profile = get_profile(board.profile)
    return f"Scored with profile {profile.id}: {profile.description}."


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(score=score, tokens=tokens)
    env.globals.update(
        competency_names=COMPETENCY_NAMES, ranking_rule=RANKING_RULE, plain_mean=plain_mean, profile_note=profile_note
    )
    return env


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def render_site(entries: Iterable[dict[str, Any]], out: str | Path) -> list[Path]:
    """Write leaderboard.md, index.html, entries/<id>.html and assets/ under `out`; returns the files.

    Entry pages of entries no longer shown are removed; nothing else in `out` is touched.
    """
    out = Path(out)
    views = [BoardView(board, ranked, scatter(ranked)) for board, ranked in ranked_boards(entries)]
    env = environment()
    written = [out / "leaderboard.md", out / "index.html"]
    _write(written[0], markdown(views))
    cited = sources(e for v in views for e in v.entries)
    _write(written[1], env.get_template("index.html.jinja").render(views=views, sources=cited))
    page = env.get_template("entry.html.jinja")
    for view in views:
        for rank, entry in enumerate(view.entries, 1):
            path = out / "entries" / f"{entry['id']}.html"
            _write(path, page.render(entry=entry, board=view.board, rank=rank, total=len(view.entries)))
            written.append(path)
    for name in ASSETS:
        (out / "assets").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TEMPLATES / name, out / "assets" / name)
        written.append(out / "assets" / name)
    for stale in sorted(set((out / "entries").glob("*.html")) - set(written)):
        stale.unlink()
    return written
