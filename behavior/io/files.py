"""Crash-safe, loss-free file output.

Everything is written under a temporary name and renamed into place, and a write that fails
(disk full, read-only folder, no permission) becomes one ``OutputError`` that names the path
and the cause, so every script stops with one line instead of a traceback. Output folders are
checked for writability before any work starts.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from behavior.errors import BehaviorError, InputError, first_line

REASONS = {  # what a user reads for the common write faults
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EDQUOT: "disk quota exceeded (disk full)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "file too large",
}


class OutputError(BehaviorError):
    """Our own output could not be written; the rest of a batch would fail too, so the run stops."""


def os_error_text(exc: OSError, path: Path | str | None = None, action: str | None = "write") -> str:
    """One line naming the path and the cause of an OSError, for example "cannot write x: disk full".

    Example:
        >>> os_error_text(OSError(errno.ENOSPC, "No space left on device"), "out/a.jpg")
        'cannot write out/a.jpg: no space left on device (disk full)'
    """
    target = path if path is not None else (exc.filename or "a file")
    reason = REASONS.get(exc.errno) or (exc.strerror or str(exc) or type(exc).__name__).lower()
    return f"cannot {action} {target}: {reason}" if action else f"{target}: {reason}"


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` into an OutputError that names it."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(os_error_text(exc, path)) from None


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` if needed and prove a file can be written in it, before any work starts.

    Raises OutputError ("cannot write DIR: read-only file system") rather than let a long run
    fail at its first save.
    """
    folder = Path(folder)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}"
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
    return folder


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    """Return the parsed JSON at ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text (header, then rows) with Unix line endings."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV file (header, then rows) atomically."""
    return atomic_write_text(path, csv_text(header, rows))


def replace_dir(staging: Path, final: Path) -> Path:
    """Move a completed ``staging`` folder to ``final``, replacing any folder already there."""
    final = Path(final)
    old = final.with_name(f".{final.name}.old")
    with writing(final):
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def foreign_entries(folder: Path, own: Iterable[str]) -> list[str]:
    """Names in ``folder`` that are not among ``own`` and are not hidden work files; [] when it is absent."""
    own = set(own)
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [n for n in names if n not in own and not n.startswith(".")]


def describe_entries(names: list[str]) -> str:
    """``"'notes.txt'"`` or ``"3 other entries, e.g. 'a'"``: what a refused folder holds, in a few words."""
    return repr(names[0]) if len(names) == 1 else f"{len(names)} other entries, e.g. {names[0]!r}"


LOCK_NAME = ".lock"


class FolderBusyError(InputError):
    """Another process is writing the same output folder (exit code 2: nothing was changed)."""


@contextmanager
def folder_lock(folder: Path | str, what: str) -> Iterator[Path]:
    """Hold ``folder``'s write lock while the block runs; FolderBusyError, naming the holder, when another run has it.

    The lock is the operating system's (``flock`` on ``folder/.lock``), so a run that dies releases it; the file
    holds the holder's process id and script for the message a second writer reads, and is removed on release.

    Example:
        >>> with folder_lock(Path("datasets/frames"), "FRAMES_DIR"):  # doctest: +SKIP
        ...     ...  # write the frames folder
    """
    folder = Path(folder)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        handle = _acquire(folder / LOCK_NAME, f"{what} {folder}")
    try:
        yield folder
    finally:
        (folder / LOCK_NAME).unlink(missing_ok=True)
        handle.close()  # releases the lock


def _acquire(path: Path, name: str) -> io.TextIOWrapper:
    """The open, locked lock file at ``path``, stamped with this process; FolderBusyError when another holds it."""
    while True:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held open while the lock is held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderBusyError(f"{name} is being written by {holder}: wait for it to finish or stop it; "
                                  "nothing was changed") from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder removed as we opened it
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    handle.write(f"process {os.getpid()} ({script}, started {time.strftime('%Y-%m-%d %H:%M:%S')})")
    handle.flush()
    return handle


class CsvStream:
    """Append CSV rows to a file as they come, encoded and written on a background thread.

    Memory stays flat however long the run (a live stream): nothing is held but a short queue.
    A write error is raised, as an OutputError naming the file, by the next ``write`` or by ``close``.

    Example:
        >>> with CsvStream(Path("tracks.csv"), ["frame", "x"]) as out:  # doctest: +SKIP
        ...     out.write([[0, 1.5], [1, 2.0]])
    """

    def __init__(self, path: Path, header: Sequence[str], max_pending: int = 256) -> None:
        self.path = Path(path)
        with writing(self.path):
            self._file = open(self.path, "w", newline="", encoding="utf-8", buffering=1 << 16)
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: OutputError | None = None
        self.rows = 0
        self._thread = threading.Thread(target=self._drain, daemon=True, name="csv")
        self._thread.start()
        self.write([header])
        self.rows = 0

    def _drain(self) -> None:
        """Write queued rows; after an error keep consuming (so producers never block) and keep the first error."""
        while (rows := self._queue.get()) is not None:
            if self._error is None:
                try:
                    with writing(self.path):
                        self._writer.writerows(rows)
                except OutputError as exc:
                    self._error = exc
                except Exception as exc:  # a closed file, an unencodable value: still one line, never a hang
                    self._error = OutputError(f"cannot write {self.path}: {first_line(exc)}")

    def write(self, rows: list[Sequence[Any]]) -> None:
        """Queue ``rows`` to be appended (the list must not be changed afterwards)."""
        if self._error is not None:
            raise self._error
        if rows:
            self._queue.put(rows)
            self.rows += len(rows)

    def close(self) -> Path:
        """Write everything queued and close the file; raises the first write error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        try:
            with writing(self.path):
                self._file.close()
        except OutputError as exc:
            self._error = self._error or exc
        if self._error is not None:
            raise self._error
        return self.path

    def __enter__(self) -> CsvStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@lru_cache(maxsize=8)
def file_sha256(path: str) -> str:
    """SHA-256 of a file, so a changed weights file invalidates earlier results."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
