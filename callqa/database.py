"""Opening DuckDB files: every connection callqa makes is offline, and a file that cannot be opened is explained
(in use by which process, corrupt, not a DuckDB file) in one line.

DuckDB opens SQLite and other foreign files by installing an extension on the fly: DNS look-ups, a download
attempt and ``~/.duckdb/extensions`` created. Every connection here switches extension auto-install and
auto-load off, and a file whose header is not DuckDB's is refused before DuckDB sees it.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import duckdb

from .errors import DatabaseError
from .text import terminal_safe

OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
           "allow_community_extensions": False}
_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
_FOREIGN = {b"SQLite format 3\x00": "a SQLite database", b"PAR1": "a Parquet file", b"PK\x03\x04": "a ZIP/XLSX file"}
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
_CORRUPT = ("corrupt", "checksum", "failed to deserialize", "serialization error", "could not read enough bytes")


def connect(path: Path, read_only: bool, external_access: bool = True) -> duckdb.DuckDBPyConnection:
    """A connection to ``path`` that never installs or loads an extension; ``external_access=False`` also
    forbids reading or writing any other file (and the network)."""
    _refuse_foreign(path)
    config: dict[str, str | bool | int | float | list[str]] = dict(OFFLINE, enable_external_access=external_access)
    old_umask = os.umask(0o077)  # the file holds call transcripts: owner-only from the first byte
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        raise explain(exc, path) from exc
    finally:
        os.umask(old_umask)


@lru_cache(maxsize=1)
def parser() -> duckdb.DuckDBPyConnection:
    """An in-memory connection for DuckDB's parser, as offline as the others (the module-level functions use a
    default connection with auto-install on); made once: a new connection per check cost about 0.1 s."""
    return duckdb.connect(":memory:", config=dict(OFFLINE, enable_external_access=False))


def _refuse_foreign(path: Path) -> None:
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except FileNotFoundError:
        return  # a new database
    except OSError as exc:
        raise DatabaseError(f"cannot read database {path}: {exc.strerror or exc}") from exc
    if head and head[8:12] != _MAGIC:
        kind = next((name for magic, name in _FOREIGN.items() if head.startswith(magic)), "not a DuckDB file")
        raise DatabaseError(f"{path} is not a callqa database ({kind}); pass callqa's DuckDB file with --db")


def explain(exc: duckdb.Error, path: Path | None = None) -> DatabaseError:
    """The one-line reason a DuckDB error gives for why the database at ``path`` cannot be used."""
    known = diagnosis(exc, path)
    if known is not None:
        return known
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DatabaseError(f"cannot use {_name(path)}: {terminal_safe(message, one_line=True)}")


def diagnosis(exc: duckdb.Error, path: Path | None = None) -> DatabaseError | None:
    """A DatabaseError if ``exc`` says the file is locked, corrupt or not DuckDB's; None for other errors."""
    message = str(exc)
    lowered = message.lower()
    if "could not set lock" in lowered:
        return DatabaseError(f"{_name(path)} is in use by {lock_holder(message)}; DuckDB allows one writer or "
                             "several readers at a time: wait for it to finish (or close it) and retry")
    if isinstance(exc, duckdb.SerializationException) or any(word in lowered for word in _CORRUPT):
        first = terminal_safe(message.splitlines()[0] if message else type(exc).__name__, one_line=True)
        return DatabaseError(f"{_name(path)} is corrupt ({first}); restore it from a backup")
    if "not a valid duckdb database" in lowered:
        return DatabaseError(f"{_name(path)} is not a callqa database (not a DuckDB file)")
    return None


def _name(path: Path | None) -> str:
    return f"database {path}" if path else "the database"


def lock_holder(message: str) -> str:
    """Which process holds DuckDB's lock, from DuckDB's message and the holder's command line."""
    found = _LOCK_HOLDER.search(message)
    if not found:
        return "another process"
    pid, exe = found["pid"], found["exe"]
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        argv = [exe]
    command = " ".join(argv) or exe
    if any(Path(arg).name == "callqa" or arg == "callqa" for arg in argv[:3]) or "callqa.cli" in command:
        kind = "another callqa process"
    elif Path(exe).name.startswith("duckdb"):
        kind = "the duckdb CLI"
    elif Path(exe).name.startswith("python"):
        kind = "a Python process (pandas, a notebook or a script)"
    else:
        kind = f"the program {Path(exe).name}"
    return f"{kind} (PID {pid}: {terminal_safe(command, one_line=True)[:120]})"
