"""Writing a report's files as one set: a folder holds the whole old set or the whole new one.

The files are written into a hidden staging folder beside the report's folder, then the
two folders trade places in one step (Linux `renameat2(RENAME_EXCHANGE)`; elsewhere two
renames, undone on the next write if a kill falls between them). A kill, a full disk or
SIGTERM while writing leaves the report's folder as it was; the staging folder is removed
(or, after kill -9, swept by the next write). A folder that holds files of its own is
never swapped: the report refuses it rather than take those files away.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconcile.errors import ReportError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """One file written whole or not at all (a temp file, then a rename)."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_pieces(path: Path, pieces: Iterable[str]) -> None:
    """Text (UTF-8) written as it is made: a page of 8 MB is never a second string in memory."""
    with path.open("w", encoding="utf-8") as out:
        out.writelines(pieces)


@contextmanager
def report_folder(out_dir: Path, what: str, names: tuple[str, ...]) -> Iterator[Path]:
    """A staging folder to write the files `names` into; on success they replace `out_dir`'s set whole."""
    staging: Path | None = None
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        _recover(out_dir)
        _check_only_ours(out_dir, names)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
        yield staging
        _swap(staging, out_dir)
    except OSError as exc:
        hint = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise ReportError(f"cannot write the {what} to {out_dir}: {hint}; the folder still holds its previous "
                          "files, if any (nothing of the new set)") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _check_only_ours(out_dir: Path, names: tuple[str, ...]) -> None:
    if not out_dir.is_dir():
        return
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in names)
    if foreign:
        raise ReportError(f"{out_dir} holds files that are not this report's ({', '.join(foreign[:3])}"
                          f"{', ...' if len(foreign) > 3 else ''}); the report replaces its folder as a whole, "
                          "so give it an empty folder or one of its own")


def _swap(staging: Path, out_dir: Path) -> None:
    """`staging` becomes `out_dir`; the previous set (if any) ends up in `staging`, to be removed."""
    if not out_dir.exists():
        staging.rename(out_dir)
        staging.mkdir()  # the caller removes it
        return
    if _exchange(staging, out_dir):
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    out_dir.rename(old)
    staging.rename(out_dir)      # a kill between these two is undone by `_recover`
    old.rename(staging)


def _exchange(first: Path, second: Path) -> bool:
    """Trade two paths in one step where the kernel can; False where it cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _recover(out_dir: Path) -> None:
    """After a kill: put back a set left between the two renames, and sweep staging folders."""
    parent = out_dir.parent
    for leftover in sorted(parent.glob(f".{out_dir.name}.old-*")):
        if not out_dir.exists():
            leftover.rename(out_dir)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in parent.glob(f".{out_dir.name}.new-*"):
        shutil.rmtree(leftover, ignore_errors=True)
