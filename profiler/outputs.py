"""Can a result be written where the user asked? Checked before anything is launched.

A QEMU boot, a flash or a 20-minute bench must not end in "cannot write": the
directory (or the file's directory) is created if needed, a probe file is
written and removed, and the free space is checked, so a read-only mount, a
path under a regular file or a full disk is one line before the run.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from profiler.errors import ResultsError

# Room for a session's closing records (error + summary are a few KB) and its first lines.
MIN_FREE_BYTES = 1 << 20


# Causes a user (or a full disk) brings about, in the user's words; any other OSError is ours to explain.
_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory",
}


def why(exc: OSError) -> str:
    """A short cause in the user's words."""
    return _REASONS.get(exc.errno or 0, exc.strerror or str(exc))


def caused_by_environment(exc: OSError) -> bool:
    """A named file the user chose, or a disk that filled: not a bug of ours."""
    return exc.errno in _REASONS and exc.filename is not None


def results_error(path: Path, exc: OSError, option: str | None = None) -> ResultsError:
    """One line naming the path, the cause and what to do."""
    named = f"{option} {path}" if option else str(path)
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return ResultsError(f"cannot write {named}: {why(exc)}; {'free space or ' if full else ''}choose another "
                        "location" + (f" with {option}" if option else ""))


def check_directory(path: Path, option: str, named: Path | None = None, create: bool = True) -> Path:
    """`path` exists (created if needed), takes a new file, and has room for results.

    `named` is what the error line names (a file in `path`), if not `path` itself. With `create`
    False nothing is made: the nearest existing directory on the way is probed instead.
    """
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        probe_dir = path
        while not create and not probe_dir.exists() and probe_dir != probe_dir.parent:
            probe_dir = probe_dir.parent
        if not probe_dir.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(probe_dir))
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".tiny-profiler-probe-") as probe:
            probe.write(b"probe\n")
            probe.flush()
        stats = os.statvfs(probe_dir)
    except OSError as exc:
        raise results_error(named or path, exc, option) from None
    if stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES:
        raise ResultsError(f"cannot write {option} {named or path}: no space left on the device "
                           f"({stats.f_bavail * stats.f_frsize // 1024} KB free); free space or choose another "
                           f"location with {option}")
    return path


def check_file(path: Path, option: str) -> Path:
    """The file's directory passes `check_directory`, and an existing file can be replaced."""
    if path.is_dir():
        raise ResultsError(f"cannot write {option} {path}: it is a directory; name a file")
    check_directory(path.parent, option, named=path, create=False)
    if path.exists() and not os.access(path, os.W_OK):
        raise ResultsError(f"cannot write {option} {path}: permission denied; choose another file with {option}")
    return path
