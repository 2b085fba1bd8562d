"""Atomic writes: a kill never leaves a half-written file (temp file + ``os.replace``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import torch


@contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[IO]:
    """A new file (``mode`` "w" or "wb") that replaces ``path`` once the block ends
    without an error: a temp file in the same folder, fsync'd, then ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    with atomic_open(path) as f:
        f.write(text)


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` via a temp file and ``os.replace``."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def atomic_write_json(path: str, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_savefig(fig, path: str, **kwargs) -> None:
    """``fig.savefig`` through a temp file and ``os.replace``. ``fig`` may be a plain
    ``matplotlib.figure.Figure`` (``overgen.figures``): nothing to close afterwards."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.fchmod(fd, 0o644)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=kwargs.pop("dpi", 110), format=os.path.splitext(path)[1][1:],
                    **kwargs)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
