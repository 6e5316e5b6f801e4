"""Atomic file writes: write to a temporary name beside the target, then rename into place, so a
crash or an error never leaves a half-written file under the target's name (an existing file is
kept until the new one is complete).

Temporary names are ``.<name>.<random>.tmp``, so one glob (``.*.tmp``) finds what a killed process
left (``tools/train.py --resume`` removes them from its work_dir). Writers that choose the format by the file's
suffix (Pillow, ``torch.export.save``) ask for ``keep_suffix=True``: ``.<name>.<random>.tmp<suffix>``.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from posezoo.errors import OutputError


def check_output(target: str | os.PathLike, suffixes: Iterable[str] | None = None, what: str = "output") -> Path:
    """Refuse, before any work, an output path that cannot be written: a suffix not in ``suffixes``,
    a parent that is a file, a folder in its place, or a folder without write permission."""
    target = Path(target)
    suffixes = tuple(suffixes or ())
    if suffixes and target.suffix.lower() not in suffixes:
        raise OutputError(f"{what} {target}: must end in {' or '.join(suffixes)}, not {target.suffix or 'nothing'!r}")
    if target.is_dir():
        raise OutputError(f"{what} {target} is a folder")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {target}: no permission to write in {parent}")
    return target


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` (mode 0666 & ~umask).

    An ``OSError`` of the folder, the temporary file or the rename becomes an :class:`OutputError`
    naming ``target`` (never the temporary name)."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                   suffix=f".tmp{target.suffix}" if keep_suffix else ".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:
        if isinstance(exc, OutputError) or exc.filename not in (None, tmp, str(target)):
            raise
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

