"""Run the `memalpha` command line, pausing for good just before one file-system step in one folder, so a
test can SIGKILL it there (tests/test_output_kill.py). Not a test module; run as a script:

    python tests/pausing_cli.py FOLDER STEP MARKER -- score RUN ...

STEP is `<call>:<name>`: the `os.fsync` of the temporary file that becomes NAME (written whole, not yet
synced), or the `os.unlink` / `os.replace` that removes or replaces NAME. When the step comes, MARKER is
written and the process sleeps until it is killed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> int:
    folder, step, marker = Path(sys.argv[1]).resolve(), sys.argv[2], Path(sys.argv[3])
    assert sys.argv[4] == "--"
    call, name = step.split(":", 1)

    def pause_if(this_call: str, path: str) -> None:
        where = Path(path).resolve()
        target = where.name.endswith(f"-{name}") if this_call == "fsync" else where.name == name
        if this_call == call and where.parent == folder and target:
            marker.write_text(f"{this_call} {where}")
            time.sleep(3600)

    real_fsync, real_unlink, real_replace = os.fsync, os.unlink, os.replace

    def fsync(fd: int) -> None:
        pause_if("fsync", os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def unlink(path, *args, **kwargs) -> None:
        pause_if("unlink", os.fspath(path))
        real_unlink(path, *args, **kwargs)

    def replace(src, dst, *args, **kwargs) -> None:
        pause_if("replace", os.fspath(dst))
        real_replace(src, dst, *args, **kwargs)

    os.fsync, os.unlink, os.replace = fsync, unlink, replace
    from benchmark.cli import main as memalpha

    return memalpha(sys.argv[5:])


if __name__ == "__main__":
    sys.exit(main())
