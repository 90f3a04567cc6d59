"""A write-ahead note of which documents a store write is changing, for crash recovery.

Before the store changes documents it records their ids in a small JSON file (written to a
temporary name, flushed to disk, renamed) and holds an exclusive ``flock`` on a lock file
beside it; when every write is done the note is removed. A note that is still there when a
store opens means a writer died mid-way (SIGKILL, power loss): the opener repairs those
documents. The lock tells a dead writer from a live one in another process: the kernel
releases it when its holder dies, however it dies.

Does not repair anything itself: :class:`rag.store.chroma.ChromaStore` decides what a whole
document is.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence


class WriteJournal:
    """The note for one collection: ``<path>`` and its lock ``<path>.lock``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def _lock(self, blocking: bool) -> int | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _note(self, doc_ids: Sequence[str]) -> None:
        # Ids of an earlier unrepaired write stay in the note: a crash now must repair both.
        ids = sorted(set(doc_ids) | set(self._read() or []))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"doc_ids": ids}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _read(self) -> list[str] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return []  # torn by a crash before the rename: nothing was written after it
        return [str(i) for i in data.get("doc_ids", [])] if isinstance(data, dict) else []

    @contextmanager
    def writing(self, doc_ids: Sequence[str]) -> Iterator[None]:
        """Hold the lock and the note while the block changes ``doc_ids``."""
        fd = self._lock(blocking=True)
        assert fd is not None
        try:
            self._note(doc_ids)
            yield
            self.path.unlink(missing_ok=True)
        finally:
            self._unlock(fd)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock, leaving the note as it is (a dead writer's note stays for recovery)."""
        fd = self._lock(blocking=True)
        assert fd is not None
        try:
            yield
        finally:
            self._unlock(fd)

    @contextmanager
    def recovering(self) -> Iterator[list[str] | None]:
        """The ids a dead writer left in the note (None: no note, or its writer is alive).

        The note is removed only when the block finishes without an exception.
        """
        if not self.path.exists():
            yield None
            return
        fd = self._lock(blocking=False)
        if fd is None:
            yield None  # a live writer holds it
            return
        try:
            ids = self._read()
            yield ids
            if ids is not None:
                self.path.unlink(missing_ok=True)
        finally:
            self._unlock(fd)
