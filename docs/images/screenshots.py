"""Make the site screenshots of docs/submit.md: the published boards rendered by `memalpha leaderboard render`
and photographed by headless Chromium at 1,400 and 390 pixels wide.

    .venv/bin/python docs/images/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))

from chromium import Chromium  # noqa: E402

from leaderboard.ranking import shown_entries  # noqa: E402
from leaderboard.render import render_site  # noqa: E402
from leaderboard.seeds import seed_records  # noqa: E402

BOARD = "board-memalpha-val-memalpha-paper-1"
SHOTS = {"site-1400.png": (1400, 1150), "site-390.png": (390, 1500)}
SECTION = f"""(() => {{
  const r = document.getElementById('{BOARD}').getBoundingClientRect();
  return {{x: 0, y: r.top + window.scrollY - 8, width: document.documentElement.clientWidth}};
}})()"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Chromium() as browser:
        render_site(shown_entries([], seed_records()), tmp)
        for name, (width, height) in SHOTS.items():
            browser.viewport(width, 900)
            browser.open((Path(tmp) / "index.html").as_uri())
            clip = {**browser.evaluate(SECTION), "height": height}
            browser.screenshot(HERE / name, clip)
            print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
