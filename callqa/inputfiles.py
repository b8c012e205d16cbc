"""Reading the text files users hand callqa (rubrics, the config file, the manifest, sidecars) under limits.

Only regular files are read, and only up to a size: ``/dev/zero``, a FIFO nobody writes to, or a 10 GB file
named ``rubric.yaml`` get a one-line reason instead of a hang or an out-of-memory kill. The file is opened
non-blocking so that a FIFO is refused rather than waited on.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_YAML_BYTES = 1 << 20  # rubrics and the config file: the shipped rubric is 8 KB
MAX_MANIFEST_BYTES = 256 << 20  # about two million rows
MAX_SIDECAR_BYTES = 1 << 20


class UnreadableFile(ValueError):
    """Why a file was not read, in a few words (callers put it in their own error type and format)."""


def _size(n: int) -> str:
    return f"{n / (1 << 20):.3g} MiB" if n >= 1 << 20 else f"{n} bytes"


def read_limited(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``; raises UnreadableFile if it is not one or is over ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket"
            raise UnreadableFile(f"not a regular file ({kind})")
        if info.st_size > max_bytes:
            raise UnreadableFile(f"the file is {_size(info.st_size)}; the limit is {_size(max_bytes)}")
        chunks, left = [], max_bytes + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # it grew while we looked
        raise UnreadableFile(f"the file is over the limit of {_size(max_bytes)}")
    return data


def read_text(path: Path, max_bytes: int, encoding: str = "utf-8") -> str:
    """``read_limited`` decoded; raises UnreadableFile for text that is not in ``encoding``."""
    data = read_limited(path, max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not {encoding.upper().removesuffix('-SIG')} text ({exc.reason} at byte "
                             f"{exc.start})") from None
