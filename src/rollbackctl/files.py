"""Writing files so that readers never see half of one: one atomic write for the whole wrapper."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import RollbackctlError


def write_atomic(path: str | os.PathLike, text: str, mode: int = 0o644) -> Path:
    """Write `text` (UTF-8) to `path`: a temporary file in the same folder, fsync, chmod `mode`, rename.

    The previous content stays whole until the rename; a failure leaves no temporary file behind.
    Raises RollbackctlError when the folder does not exist.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise RollbackctlError(f"cannot write {target}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
