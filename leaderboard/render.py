"""`leaderboard render`: leaderboard.md (tabulate) and a static HTML site (jinja2, autoescaped) from the
results store and the seeds, with each board's records for download (JSON and CSV).

Output is deterministic: the same records give byte-identical files (sorted inputs, fixed number
formats, no timestamps). The site works offline from the file system: a small vanilla JS sorter and
filter, no CDN, plots as inline SVG computed here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from tabulate import tabulate

from benchmark.profiles import get_profile
from benchmark.report import interval_text
from tasks.atomic import replace_file

from .boards import Board
from .pins import PinnedScorer, sampling_text, tokenizer_identity
from .plot import Plot, scatter, tokens_label
from .ranking import ranked_boards

TEMPLATES = Path(__file__).parent / "templates"
ASSETS = ("board.js", "style.css")
DATA_DIR = "data"
FILTER_FROM = 10  # boards with more entries get a filter box
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
    pin: PinnedScorer | None

    @property
    def files(self) -> dict[str, str]:
        """The board's download files, relative to the site root."""
        return {ext: f"{DATA_DIR}/{self.board.anchor}.{ext}" for ext in ("json", "csv")}

    @property
    def filtered(self) -> bool:
        return len(self.entries) > FILTER_FROM


_PARAMS = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*[x×]\s*)?(\d+(?:\.\d+)?)\s*([KMBT])\b", re.IGNORECASE)
_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parameters_value(text: str) -> float | None:
    """A model size as a number, for sorting: '4B' -> 4e9, '350M' -> 3.5e8, '8x7B' -> 5.6e10; None when the
    text does not start with one ('not disclosed')."""
    found = _PARAMS.match(text)
    if found is None:
        return None
    experts, size, unit = found.groups()
    return float(experts or 1) * float(size) * _SCALE[unit.upper()]


def scorer_summary(entry: Mapping[str, Any]) -> dict[str, str]:
    """Profile, reader, judge and tokenizer of an entry, in words: the re-score's, or its source's."""
    scorer = entry.get("scorer") or {}
    if entry["status"] == "reported":
        return {
            "profile": "its source's own pipeline",
            "reader": scorer.get("reader", ""),
            "judge": "",
            "tokenizer": scorer.get("tokenizer", ""),
            "retrieval": scorer.get("retrieval", ""),
        }
    reader, judge = scorer.get("reader") or {}, scorer.get("judge") or {}
    retriever, budget = scorer.get("retriever") or {}, scorer.get("budget") or {}
    return {
        "profile": scorer.get("profile") or entry["board"].get("profile", ""),
        "reader": f"{reader.get('backend', '')} {reader.get('model', '')}".strip(),
        "judge": f"{judge.get('backend', '')} {judge.get('model', '')}".strip(),
        "tokenizer": tokenizer_identity(budget["counter"]) if budget.get("counter") else "",
        "retrieval": f"top {retriever.get('top_k')} per memory type; prompt budget {budget.get('tokens')} tokens",
    }


def score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def estimate_of(entry: Mapping[str, Any], section: str, key: str = "") -> dict[str, Any]:
    """The `{"se", "ci"}` of one of an entry's scores (`section` "overall", or "tasks", "competencies",
    "averages" with a key); empty where the record has none (reported numbers, records of format 1)."""
    spread = entry["scores"].get("uncertainty") or {}
    found = spread.get(section) if section == "overall" else (spread.get(section) or {}).get(key)
    return found or {}


def se_text(estimate: Mapping[str, Any]) -> str:
    """'± SE', or '' where there is none."""
    return "" if estimate.get("se") is None else f"± {estimate['se']:.3f}"


def score_with_se(entry: Mapping[str, Any]) -> str:
    """The overall score with its standard error where the record has one: '0.523 ± 0.012'."""
    return " ".join(filter(None, (score(entry["scores"]["overall"]), se_text(estimate_of(entry, "overall")))))


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
        headers = ["rank", "agent", "version", "model", "params", "overall", *comps, "memory (tokens)", "date", "marks"]
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
                    score_with_se(e),
                    *([score(plain_mean(e))] if plain else []),
                    *(score(e["scores"]["competencies"].get(c)) for c in comps),
                    tokens(e.get("memory_tokens")),
                    e.get("submitted") or "",
                    marks(e) + ref,
                ]
            )
        lines += [
            f"## {view.board.name} (profile {view.board.profile})",
            "",
            md_text(view.board.description) + " " + profile_note(view.board),
            "",
            *([f"Pinned scorer: {md_text(view.pin.describe())}.", ""] if view.pin else []),
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
    "scores, the rule of Mem-α's Avg. columns. ± is the overall's standard error over instances (re-scored "
    "entries; docs/scoring.md says how), and each entry's page gives every score's standard error and 95% "
    "bootstrap interval; entries whose intervals overlap may not truly differ."
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
    env.filters.update(
        score=score, tokens=tokens, sampling_text=sampling_text, se_text=se_text, interval_text=interval_text
    )
    env.globals.update(
        competency_names=COMPETENCY_NAMES,
        ranking_rule=RANKING_RULE,
        plain_mean=plain_mean,
        profile_note=profile_note,
        parameters_value=parameters_value,
        scorer_summary=scorer_summary,
        tokenizer_identity=tokenizer_identity,
        estimate_of=estimate_of,
    )
    return env


CSV_NEUTRAL = "'"
"""Put before a text cell that a spreadsheet would take for a formula (=, +, -, @, tab, CR first)."""


def _csv_text(value: str) -> str:
    return CSV_NEUTRAL + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def board_csv(view: BoardView) -> str:
    """The board's entries in rank order, one row each: who, scores (overall with its standard error and
    interval, averages, competencies, tasks), memory, status, date and scorer. Text cells a spreadsheet
    would run as formulas start with a quote."""
    comps, tasks = view.board.competencies, view.board.tasks
    averages = [a for a in view.board.averages if a != "mean_of_competencies"]
    header = [
        *("rank", "id", "agent", "version", "model", "parameters", "status", "submitted", "overall"),
        *("overall_se", "overall_ci_low", "overall_ci_high"),
        *averages,
        *comps,
        *(f"task:{t}" for t in tasks),
        *("memory_tokens", "contamination", "profile", "reader", "judge", "tokenizer", "link"),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for rank, e in enumerate(view.entries, 1):
        scores, who = e["scores"], scorer_summary(e)
        possible = e["contamination"]["possible"]
        overall = estimate_of(e, "overall")
        numbers = [
            scores["overall"],
            overall.get("se"),
            *(overall.get("ci") or (None, None)),
            *(scores.get("averages", {}).get(a) for a in averages),
            *(scores["competencies"].get(c) for c in comps),
            *((scores["tasks"].get(t) or {}).get("score") for t in tasks),
            e.get("memory_tokens"),
        ]
        texts = [e["id"], e["agent"]["name"], e["agent"]["version"], e["model"], e["parameters"], e["status"]]
        writer.writerow(
            [
                rank,
                *(_csv_text(t) for t in texts),
                e.get("submitted") or "",
                *("" if n is None else n for n in numbers),
                "not stated" if possible is None else "possible" if possible else "no",
                *(_csv_text(who[k]) for k in ("profile", "reader", "judge", "tokenizer")),
                _csv_text(e.get("link") or ""),
            ]
        )
    return out.getvalue()


def board_json(view: BoardView) -> str:
    """The board, its pinned scorer (null where the store pins none) and its records in rank order."""
    board = view.board
    doc = {
        "board": {"kind": board.kind, "name": board.name, "profile": board.profile, "tasks": list(board.tasks)},
        "pinned_scorer": view.pin.to_json() if view.pin else None,
        "entries": [{"rank": rank, **e} for rank, e in enumerate(view.entries, 1)],
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, text)


def render_site(
    entries: Iterable[dict[str, Any]], out: str | Path, pins: Mapping[Board, PinnedScorer] | None = None
) -> list[Path]:
    """Write leaderboard.md, index.html, entries/<id>.html, data/<board>.{json,csv} and assets/ under `out`;
    returns the files. `pins` are the boards' pinned scorers (shown with each board).

    Entry pages and board files no longer shown are removed; nothing else in `out` is touched.
    """
    out = Path(out)
    pins = pins or {}
    views = [BoardView(b, ranked, scatter(ranked), pins.get(b)) for b, ranked in ranked_boards(entries)]
    env = environment()
    written = [out / "leaderboard.md", out / "index.html"]
    _write(written[0], markdown(views))
    cited = sources(e for v in views for e in v.entries)
    _write(written[1], env.get_template("index.html.jinja").render(views=views, sources=cited))
    for view in views:
        for ext, write in (("json", board_json), ("csv", board_csv)):
            written.append(out / view.files[ext])
            _write(written[-1], write(view))
    page = env.get_template("entry.html.jinja")
    for view in views:
        for rank, entry in enumerate(view.entries, 1):
            path = out / "entries" / f"{entry['id']}.html"
            _write(path, page.render(entry=entry, board=view.board, rank=rank, total=len(view.entries)))
            written.append(path)
    for name in ASSETS:
        _write(out / "assets" / name, (TEMPLATES / name).read_text(encoding="utf-8"))
        written.append(out / "assets" / name)
    shown = set(written)
    for stale in sorted({*(out / "entries").glob("*.html"), *(out / DATA_DIR).glob("board-*.*")} - shown):
        stale.unlink()
    return written
