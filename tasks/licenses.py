"""Licenses of the sources, as SPDX identifiers, and their names on the Hugging Face hub.

A source's license is an SPDX expression of identifiers joined by AND: the license of the copy we read,
and of the data it was derived from where that differs (MemoryAgentBench's MIT release of Banking77
sentences is also under Banking77's CC-BY-4.0). `NOASSERTION` (SPDX: no license could be determined) marks
data published without one (TREC, PubMed-RCT, Mem-alpha's processed releases). Facts from the sources'
license files, as listed in shared/data/raw/SOURCES.md where a sample is there.
"""

from __future__ import annotations

# SPDX identifier -> the hub's `license:` value for a dataset card.
HUB_LICENSE = {
    "CC-BY-3.0": "cc-by-3.0",
    "CC-BY-4.0": "cc-by-4.0",
    "CC-BY-NC-4.0": "cc-by-nc-4.0",
    "CC-BY-SA-4.0": "cc-by-sa-4.0",
    "MIT": "mit",
    "BSD-3-Clause": "bsd-3-clause",
    "NOASSERTION": "unknown",
}


def spdx_ids(expression: str) -> list[str]:
    """The identifiers of an `A AND B` expression, each checked against the known list."""
    ids = [part.strip() for part in expression.split(" AND ")]
    unknown = [i for i in ids if i not in HUB_LICENSE]
    if unknown:
        raise ValueError(
            f"license {expression!r}: {', '.join(map(repr, unknown))} not among the SPDX ids in use "
            f"({', '.join(HUB_LICENSE)}); add it to tasks/licenses.py"
        )
    return list(dict.fromkeys(ids))


def hub_licenses(expression: str) -> list[str]:
    """The card's `license:` list for an SPDX expression."""
    return list(dict.fromkeys(HUB_LICENSE[i] for i in spdx_ids(expression)))


def combine(*expressions: str) -> str:
    """One SPDX expression requiring every license of `expressions` (each named once)."""
    return " AND ".join(dict.fromkeys(i for e in expressions for i in spdx_ids(e)))
