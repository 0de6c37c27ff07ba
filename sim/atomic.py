"""Files written whole or not at all: write beside the target, then rename into place in one step.

    with atomic_file("out/report.html", "w", shared=True) as fh:
        fh.write(page)                 # an error here leaves no file and the old one untouched

Every output of player-sim (event and request files, ledgers, reports, the collector's sidecar)
goes through here, so a reader never sees half a file (DESIGN: "Files are written whole or not at all").
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def replace_path(finished: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a finished temporary file or folder to `path`, replacing what is there.

    A file replaces in one rename. A folder cannot be renamed over another, so an old one is
    first renamed aside and removed only once the new one is in place: `path` is never missing
    the old output and the new one at once.
    """
    finished, path = Path(finished), Path(path)
    if not finished.is_dir():
        os.replace(finished, path)
        return
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(path, old)
    os.rename(finished, path)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", *, shared: bool = False, **open_args: Any) -> Iterator[IO]:
    """A file open for writing beside `path`, renamed to `path` when the block ends without an error
    and removed when it raises. `shared`: readable by others as the umask allows (a temporary file is
    private, 0600, until then), for outputs such as reports."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **open_args) as fh:
            yield fh
        if shared:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: bytes, *, shared: bool = False) -> None:
    """`data` as the whole content of `path`, or `path` untouched."""
    with atomic_file(path, "wb", shared=shared) as fh:
        fh.write(data)
