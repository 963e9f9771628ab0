"""Rendering: ranking, byte-identical re-renders, seeds marked as reported, markup shown as text (in the
files and in headless Chromium after sorting), the score/memory plot."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from chromium import CHROMIUM, Chromium
from leaderboard_helpers import (
    FakeReader,
    memory_line,
    metadata,
    pin_board,
    snapshot,
    write_submission,
    write_task,
)

from benchmark.cli import main
from leaderboard.boards import get_board
from leaderboard.pins import PinnedScorer
from leaderboard.plot import Box, nice_ticks, place_labels
from leaderboard.ranking import ranked_boards, shown_entries
from leaderboard.render import render_site
from leaderboard.rescore import add_submission
from leaderboard.seeds import seed_records
from leaderboard.store import ResultsStore, record_identity
from leaderboard.submission import record_id
from leaderboard.validate import validate_submission
from tasks.tokenization import get_counter

EVIL = "<script>alert(1)<img src=x onerror=alert(2)><b>bold|x"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    """One genuine re-scored record (fake reader) to derive the others from."""
    root = tmp_path_factory.mktemp("lb")
    hashes = {"squad": write_task(root / "data", "squad", {"validation": ["v0", "v1"]})}
    sub = write_submission(
        root / "sub", metadata(("task", "squad"), hashes), [memory_line("squad", i) for i in ("v0", "v1")]
    )
    store = ResultsStore(root / "results")
    pin_board(store, ("task", "squad"))
    validated = validate_submission(sub, root / "data", store=store)
    record, _ = add_submission(validated, root / "data", store, FakeReader(), counter=get_counter("simple"))
    return record


def entry(
    template: dict,
    name: str,
    overall: float,
    memory: float | None,
    version: str = "1",
    board: tuple[str, str] = ("task", "squad"),
    profile: str = "v1@2",
) -> dict:
    record = copy.deepcopy(template)
    record.update(
        id=record_id(board[1], name, version, profile),
        agent={"name": name, "version": version},
        board={"kind": board[0], "name": board[1], "profile": profile},
        memory_tokens=memory,
    )
    record["scores"].update(overall=overall, competencies={"AR": overall})
    return record


@pytest.fixture
def entries(template) -> list[dict]:
    return [
        entry(template, "Alpha", 0.9, 100.0),
        entry(template, "Beta", 0.5, 10.0),
        entry(template, EVIL, 0.7, 1000.0),
        entry(template, "Gamma", 0.5, 5.0),
        entry(template, "delta", 0.5, None),
    ]


def names(board_entries: list[dict]) -> list[str]:
    return [e["agent"]["name"] for e in board_entries]


def test_ranking_by_overall_then_memory_then_name(entries):
    ((board, ranked),) = ranked_boards(entries)
    assert board.name == "squad"
    assert names(ranked) == ["Alpha", EVIL, "Gamma", "Beta", "delta"]


def test_rendering_is_deterministic(tmp_path, entries):
    first = tmp_path / "a"
    render_site(entries, first)
    before = snapshot(first)
    render_site(entries, first)
    render_site(list(reversed(entries)), tmp_path / "b")
    assert snapshot(first) == before == snapshot(tmp_path / "b")
    assert set(before) >= {
        "leaderboard.md",
        "index.html",
        "assets/board.js",
        "assets/style.css",
        "data/board-squad-v1-2.json",
        "data/board-squad-v1-2.csv",
        *(f"entries/{e['id']}.html" for e in entries),
    }


def test_pages_of_entries_no_longer_shown_are_removed(tmp_path, entries):
    render_site(entries, tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    render_site(entries[:2], tmp_path)
    assert sorted(p.stem for p in (tmp_path / "entries").glob("*.html")) == sorted(e["id"] for e in entries[:2])
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_markup_is_escaped_everywhere(tmp_path, entries):
    entries[2].update(model=EVIL, parameters=EVIL, contact=EVIL, license=EVIL, description=EVIL, trained_on=[EVIL])
    render_site(entries, tmp_path)
    for page in [tmp_path / "index.html", tmp_path / "entries" / f"{entries[2]['id']}.html"]:
        html = page.read_text()
        assert "&lt;script&gt;alert(1)&lt;img src=x onerror=alert(2)&gt;&lt;b&gt;bold|x" in html
        assert "<img" not in html and "<b>" not in html
        assert re.findall(r"<script[^>]*>", html) == (
            [] if "entries" in str(page) else ['<script src="assets/board.js">']
        )
    md = (tmp_path / "leaderboard.md").read_text()
    assert "&lt;script&gt;alert(1)&lt;img src=x onerror=alert(2)&gt;&lt;b&gt;bold\\|x" in md
    assert "<script" not in md and "<b>" not in md


def svg_of(html: str, board: int = 0) -> ET.Element:
    return ET.fromstring(re.findall(r"<svg.*?</svg>", html, re.S)[board])


SVG = "{http://www.w3.org/2000/svg}"


def test_plot_has_a_point_per_entry_with_a_memory_size(tmp_path, entries):
    render_site(entries, tmp_path)
    html = (tmp_path / "index.html").read_text()
    root = svg_of(html)
    xs = {c.find(f"{SVG}title").text.split(" 1:")[0]: float(c.get("cx")) for c in root.iter(f"{SVG}circle")}
    assert len(xs) == 4 and EVIL in xs  # delta has no memory size
    assert xs["Gamma"] < xs["Beta"] < xs["Alpha"] < xs[EVIL]  # x grows with memory size
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "point-label"]
    assert sorted(labels) == sorted(["Alpha", "Beta", "Gamma", EVIL[:27].rstrip() + "…"])  # long names are cut
    assert "1 entry has no memory size" in html


def test_the_score_axis_is_fitted_to_the_board(tmp_path, template):
    low = [entry(template, f"Agent {i}", score, 100.0 * (i + 1)) for i, score in enumerate((0.021, 0.045, 0.068))]
    render_site(low, tmp_path)
    root = svg_of((tmp_path / "index.html").read_text())
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick" and t.get("text-anchor") == "end"]
    assert ticks == ["0.02", "0.04", "0.06", "0.08"]
    ys = sorted(float(c.get("cy")) for c in root.iter(f"{SVG}circle"))
    assert ys[-1] - ys[0] > 0.6 * (380 - 16 - 52)  # most of the plot; on a 0-1 axis: 15 px at the bottom
    assert nice_ticks(0.105, 0.523) == ([0.0, 0.2, 0.4, 0.6], 1)
    assert nice_ticks(0.9, 0.99) == ([0.9, 0.925, 0.95, 0.975, 1.0], 3)  # never past 1
    assert nice_ticks(0.5, 0.5)[0][0] <= 0.5 <= nice_ticks(0.5, 0.5)[0][-1]


def test_labels_never_overlap_each_other_or_points():
    area = Box(64, 16, 696, 328)
    crowd = [(300 + (i % 5) * 4, 150 + (i // 5) * 3, f"Agent number {i}") for i in range(30)]
    placed = place_labels(crowd, area)
    boxes = [box for found in placed if found for _, box in [found]]
    points = [Box(x - 5, y - 5, x + 5, y + 5) for x, y, _ in crowd]
    assert 0 < len(boxes) < len(crowd)  # the best-ranked get labels; where there is no room, none
    assert placed[0] is not None
    for i, box in enumerate(boxes):
        assert box.inside(area)
        assert not any(box.overlaps(other) for other in boxes[i + 1 :] + points)


def test_seeds_are_shown_as_reported_until_rescored(tmp_path, template):
    seeds = seed_records()
    mem_alpha = next(s for s in seeds if s["board"]["name"] == "memalpha-val" and s["agent"]["name"] == "Mem-α")
    render_site(shown_entries([], seeds), tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 1 ") and "Mem-α" in line)
    assert "R C [2]" in row and "0.523" in row and "7.9K" in row
    # a paper board names its profile and shows the paper's plain mean of tasks beside ours (Table 1: 0.619)
    assert "## memalpha-val (profile memalpha-paper@1)" in md and re.search(r"\| 0\.619 +\|", row)
    assert md.count("mean of tasks") >= len({s["board"]["name"] for s in seeds})
    assert "https://arxiv.org/abs/2509.25911v1" in md and "https://arxiv.org/abs/2507.05257v4" in md
    page = (tmp_path / "entries" / f"{mem_alpha['id']}.html").read_text()
    assert "have not been re-scored by us" in page and "Table 1" in page
    assert '<span class="mark reported"' in (tmp_path / "index.html").read_text()

    # a v1 re-score of the same agent is another board: the reported numbers stay on theirs
    ours = entry(template, "Mem-α", 0.3, 500.0, version="2509.25911v1", board=("suite", "memalpha-val"))
    shown = shown_entries([ours], seeds)
    assert mem_alpha in shown and ours in shown and len(shown) == len(seeds) + 1
    boards = {(b.name, b.profile): [e["status"] for e in es] for b, es in ranked_boards(shown)}
    assert boards[("memalpha-val", "v1@2")] == ["rescored"]
    assert set(boards[("memalpha-val", "memalpha-paper@1")]) == {"reported"}
    # a memalpha-paper re-score replaces the reported entry
    rescored = entry(
        template,
        "Mem-α",
        0.3,
        500.0,
        version="2509.25911v1",
        board=("suite", "memalpha-val"),
        profile="memalpha-paper@1",
    )
    shown = shown_entries([rescored], seeds)
    assert mem_alpha not in shown and rescored in shown and len(shown) == len(seeds)


def test_boards_name_their_profile_and_only_paper_boards_show_the_plain_mean(tmp_path, entries, template):
    paper = entry(template, "Delta", 0.4, 50.0, profile="memalpha-paper@1")
    paper["scores"]["averages"] = {"mean_of_competencies": 0.4, "mean_of_tasks": 0.45}
    render_site([*entries, paper], tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    v1, on_paper = md.split("## squad (profile v1@2)")[1].split("## squad (profile memalpha-paper@1)")
    assert "mean of tasks" not in v1.split("\n\n")[2] and "Alpha" in v1 and "Delta" not in v1
    assert re.search(r"\| 0\.450 +\|", on_paper) and "Alpha" not in on_paper
    html = (tmp_path / "index.html").read_text()
    assert 'data-profile="v1@2"' in html and 'data-profile="memalpha-paper@1"' in html
    assert html.count('data-key="plain"') == 1


def test_every_board_can_be_downloaded_as_json_and_csv(tmp_path, entries, template):
    entries[0]["agent"]["name"] = "=HYPERLINK(1)"  # a spreadsheet would run this as a formula
    pin = PinnedScorer.create(profile="v1", reader=("fake", "fake-reader"), counter=get_counter("simple"))
    board = get_board("task", "squad")
    render_site([*entries, *shown_entries([], seed_records())], tmp_path, {board: pin})
    html = (tmp_path / "index.html").read_text()
    views = ranked_boards([*entries, *shown_entries([], seed_records())])
    for view_board, ranked in views:
        for ext in ("json", "csv"):
            assert f'href="data/{view_board.anchor}.{ext}" download' in html
        doc = json.loads((tmp_path / "data" / f"{view_board.anchor}.json").read_text())
        assert [e["id"] for e in doc["entries"]] == [e["id"] for e in ranked]
        assert [e["rank"] for e in doc["entries"]] == list(range(1, len(ranked) + 1))
        assert doc["pinned_scorer"] == (pin.to_json() if view_board == board else None)
        rows = list(csv.DictReader(io.StringIO((tmp_path / "data" / f"{view_board.anchor}.csv").read_text())))
        assert [r["id"] for r in rows] == [e["id"] for e in ranked]
        assert [float(r["overall"]) for r in rows] == [e["scores"]["overall"] for e in ranked]
        for task in view_board.tasks:
            assert [r[f"task:{task}"] for r in rows] == [str(e["scores"]["tasks"][task]["score"]) for e in ranked]
    squad = list(csv.DictReader(io.StringIO((tmp_path / "data" / f"{board.anchor}.csv").read_text())))
    assert squad[0]["agent"] == "'=HYPERLINK(1)" and squad[0]["reader"] == "fake fake-reader"
    assert squad[0]["tokenizer"] == "simple" and squad[0]["profile"] == "v1@2"
    assert squad[0]["submitted"] == template["submitted"] and squad[-1]["memory_tokens"] == ""  # delta: no size
    assert "Pinned scorer: profile v1@2; reader fake fake-reader; tokenizer simple" in (
        (tmp_path / "leaderboard.md").read_text()
    )
    assert "scored with its pinned scorer: profile v1@2; reader fake fake-reader" in html


def test_entry_pages_name_date_reader_tokenizer_and_profile(tmp_path, template):
    seeds = shown_entries([], seed_records())
    render_site([template, *seeds], tmp_path)
    page = (tmp_path / "entries" / f"{template['id']}.html").read_text()
    for shown in (f"<dt>Added</dt><dd>{template['submitted']}</dd>", "<dt>Profile</dt><dd>v1@2</dd>"):
        assert shown in page
    assert "<dt>Reader</dt><dd>fake fake-reader; temperature 0.0, top-p 1.0, at most 2048 answer tokens" in page
    assert "<dt>Tokenizer</dt><dd>simple</dd>" in page
    mem_alpha = next(s for s in seeds if s["board"]["name"] == "memalpha-val" and s["agent"]["name"] == "Mem-α")
    page = (tmp_path / "entries" / f"{mem_alpha['id']}.html").read_text()
    assert "<dt>Published</dt><dd>2025-09-30</dd>" in page and "<dd>Qwen3-32B, thinking off" in page
    assert "2025-09-30" in (tmp_path / "leaderboard.md").read_text()


def test_a_one_task_suite_is_its_tasks_board(template):
    assert get_board("suite", "conversation") == get_board("task", "locomo")
    suite = entry(template, "Alpha", 0.5, 10.0, board=("suite", "conversation"))
    task = entry(template, "Beta", 0.6, 10.0, board=("task", "locomo"))
    ((board, ranked),) = ranked_boards([suite, task])
    assert (board.kind, board.name) == ("task", "locomo") and names(ranked) == ["Beta", "Alpha"]
    twin = entry(template, "Alpha", 0.5, 10.0, board=("task", "locomo"))
    assert record_identity(twin) == record_identity(suite)  # the same entry: a duplicate for the store


def test_render_command_reads_the_store(tmp_path, template, capsys):
    store = tmp_path / "results"
    store.mkdir()
    (store / f"{template['id']}.json").write_text(__import__("json").dumps(template))
    assert main(["leaderboard", "render", "--out", str(tmp_path / "site"), "--results", str(store), "--no-seeds"]) == 0
    assert "re-scored" in (tmp_path / "site" / "index.html").read_text()
    assert sorted(p.stem for p in (tmp_path / "site" / "entries").iterdir()) == [template["id"]]


# ------------------------------------------------------------------ in headless Chromium

VISIBLE_ROWS = (
    "Array.from(document.querySelectorAll('table.board tbody tr')).filter(r => !r.hidden).map(r => r.dataset.id)"
)
LAYOUT = """(() => {
  const rect = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {
    page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
    tables: Array.from(document.querySelectorAll('div.scroll')).map(d => [d.scrollWidth, d.clientWidth]),
    names: Array.from(document.querySelectorAll('td.agent a')).map(a => [a.textContent, a.getClientRects().length]),
    plots: Array.from(document.querySelectorAll('svg.plot')).map(svg => ({
      labels: Array.from(svg.querySelectorAll('text.point-label')).map(t => [t.textContent, rect(t)]),
      points: Array.from(svg.querySelectorAll('circle')).map(rect),
    })),
  };
})()"""


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    with Chromium() as chromium:
        yield chromium


def test_sorting_in_headless_chromium_and_markup_as_text(tmp_path, entries, browser):
    for e, params in zip(entries, ("4B", "14B", "not disclosed", "350M", "1.5B"), strict=True):
        e["parameters"] = params
    render_site(entries, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").as_uri()
    ids = {e["agent"]["name"]: e["id"] for e in entries}

    browser.open(index + "#sort=overall-asc")
    # ties keep the board's rank order; the empty memory of 'delta' does not matter here
    assert browser.evaluate(VISIBLE_ROWS) == [ids[n] for n in ("Gamma", "Beta", "delta", EVIL, "Alpha")]
    assert EVIL in browser.evaluate("Array.from(document.querySelectorAll('td.agent')).map(td => td.textContent)")
    tags = browser.evaluate("Array.from(document.querySelectorAll('table *')).map(e => e.localName)")
    assert set(tags).isdisjoint({"script", "img", "b"})  # the names are text in the page, not elements
    assert browser.evaluate("Array.from(document.scripts).map(s => s.getAttribute('src'))") == ["assets/board.js"]

    browser.open(index + "#sort=memory-desc")
    assert browser.evaluate(VISIBLE_ROWS) == [ids[n] for n in (EVIL, "Alpha", "Beta", "Gamma", "delta")]  # unknown last
    browser.open(index + "#sort=params-asc")  # as numbers (as text: 1.5B, 14B, 350M, 4B); undisclosed last
    assert browser.evaluate(VISIBLE_ROWS) == [ids[n] for n in ("Gamma", "delta", "Alpha", "Beta", EVIL)]


def crowd(template: dict) -> list[dict]:
    """A long board whose entries sit close together on the plot, with long and wide names."""
    names = [f"Crowded agent number {i:02d}" for i in range(22)] + ["Needle finder", "漢字のエージェント 🧠", "W" * 40]
    return [entry(template, name, 0.40 + 0.004 * (i % 7), 1000.0 * (1.0 + 0.05 * i)) for i, name in enumerate(names)]


@pytest.mark.parametrize("width", [1400, 390])
def test_page_layout_in_headless_chromium(tmp_path, template, browser, width):
    """On the published boards and a crowded one: no plot label overlaps another or a point; at 1,400 px every
    table fits and names keep to one line; at 390 px the tables scroll inside their boxes, not the page."""
    render_site([*shown_entries([], seed_records()), *crowd(template)], tmp_path / "site")
    browser.viewport(width, 900)
    browser.open((tmp_path / "site" / "index.html").as_uri())
    layout = browser.evaluate(LAYOUT)
    assert len(layout["plots"]) == 3  # memalpha-val, mab-paper (their Mem-α rows have sizes) and the crowd
    for plot in layout["plots"]:
        labels = [box for _, box in plot["labels"]]
        assert len(labels) >= 5
        for i, box in enumerate(labels):
            hits = [other for other in labels[i + 1 :] + plot["points"] if overlap(box, other)]
            assert not hits, (plot["labels"][i], hits)
    assert all(lines == 1 for _, lines in layout["names"]), [n for n in layout["names"] if n[1] != 1]
    page_width, page_client = layout["page"]
    assert page_width <= page_client
    if width == 1400:
        assert all(scroll <= client for scroll, client in layout["tables"]), layout["tables"]
    else:
        assert all(scroll > client for scroll, client in layout["tables"])


def test_filter_box_of_a_long_board_in_headless_chromium(tmp_path, template, browser):
    render_site([*crowd(template), entry(template, "Short board", 0.5, 10.0, board=("task", "hotpotqa"))], tmp_path)
    browser.open((tmp_path / "index.html").as_uri())
    boxes = browser.evaluate("Array.from(document.querySelectorAll('p.filter')).map(p => p.hidden)")
    assert boxes == [False]  # shown by the script, and only on the long board
    typed = """(() => {
      const input = document.querySelector('p.filter input');
      input.value = 'NEEDLE fin';
      input.dispatchEvent(new Event('input'));
      return document.querySelector('p.filter output').textContent;
    })()"""
    assert browser.evaluate(typed) == "1 of 25 shown"
    shown = browser.evaluate(VISIBLE_ROWS)
    assert len(shown) == 2 and "needle-finder" in shown[0] and shown[1].startswith("hotpotqa")  # not filtered
