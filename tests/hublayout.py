"""Write local copies of hub dataset repos in the hub layout (data files + README `configs:` card)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset


def write_hub_repo(
    mirror: Path, repo_id: str, configs: Mapping[str | None, Mapping[str, Sequence[dict[str, Any]]]]
) -> Path:
    """Create `mirror/<repo_id>/` with one parquet file per (config, split) and a dataset card that
    declares them, as the hub does. A config of None is the repo's `default` config under data/."""
    repo = mirror / repo_id
    card = ["---", "configs:"]
    for config, splits in configs.items():
        folder = config or "data"
        card.append(f"- config_name: {config or 'default'}")
        card.append("  data_files:")
        for split, rows in splits.items():
            (repo / folder).mkdir(parents=True, exist_ok=True)
            Dataset.from_list(list(rows)).to_parquet(str(repo / folder / f"{split}-00000-of-00001.parquet"))
            card.append(f"  - split: {split}")
            card.append(f"    path: {folder}/{split}-*")
    card.append("---")
    (repo / "README.md").write_text("\n".join(card) + "\n")
    return repo
