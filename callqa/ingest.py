"""Find recordings and resolve each one's call metadata.

Metadata comes from, in order: the ``--manifest`` CSV, a sidecar ``NAME.json`` next to the recording, the file
name parsed with ``--name-pattern``. A call without an agent id is stored under ``unknown``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import stat
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from .errors import ManifestError, UsageError
from .inputfiles import MAX_MANIFEST_BYTES, MAX_SIDECAR_BYTES, UnreadableFile, read_limited, read_text
from .records import CallSource, MetadataFrom

log = logging.getLogger("callqa")

AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .mp3 .flac .ogg .oga .opus .m4a .mp4 .aac .wma .webm .amr .aif .aiff .au .gsm .caf".split()
)
DEFAULT_NAME_PATTERN = "{agent_id}_{started_at}_{call_id}"
UNKNOWN_AGENT = "unknown"
MANIFEST_REQUIRED = ("file", "agent_id", "started_at")
_FIELD = re.compile(r"\{(\w+)\}")
_EXAMPLES = 3  # names quoted in a warning about skipped files or rows
_TIME_FORMATS = ("%Y%m%dT%H%M%S", "%Y%m%d-%H%M%S", "%Y%m%d%H%M%S", "%Y-%m-%dT%H-%M-%S", "%Y-%m-%d_%H-%M-%S", "%Y%m%d")


class Candidate(NamedTuple):
    """A file found on disk, before its bytes are read."""

    path: Path
    manifest_row: dict[str, str] | None


def parse_timestamp(text: str | None) -> datetime | None:
    """Parse the timestamp forms phone systems put in names and manifests; None if empty or unparseable."""
    if not text:
        return None
    text = text.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def compile_name_pattern(pattern: str) -> re.Pattern[str]:
    """Turn ``{agent_id}_{started_at}_{call_id}`` into a regex over the file stem; the last field takes the rest."""
    fields = _FIELD.findall(pattern)
    if not fields:
        raise UsageError(f"--name-pattern {pattern!r} names no field; use e.g. {DEFAULT_NAME_PATTERN}")
    if len(set(fields)) != len(fields):
        raise UsageError(f"--name-pattern {pattern!r} repeats a field")
    bad = [f for f in fields if not f.isidentifier() or not f.isascii()]
    if bad:
        raise UsageError(f"--name-pattern {pattern!r}: field {{{bad[0]}}} is not a name (letters, digits and _, "
                         "not starting with a digit)")
    regex, pos = "", 0
    for i, match in enumerate(_FIELD.finditer(pattern)):
        regex += re.escape(pattern[pos : match.start()])
        greedy = ".+" if i == len(fields) - 1 else "[^_]+?"
        regex += f"(?P<{match.group(1)}>{greedy})"
        pos = match.end()
    regex += re.escape(pattern[pos:])
    try:
        return re.compile(f"^{regex}$")
    except (re.error, RecursionError, OverflowError) as exc:  # a pattern too big for the regex engine
        raise UsageError(f"--name-pattern {pattern!r} cannot be used: {exc}") from None


def read_manifest(path: Path) -> dict[Path, dict[str, str]]:
    """Rows keyed by resolved file path; relative ``file`` entries are relative to the manifest's folder.

    A file named on two rows takes the later row; the earlier one is skipped with a warning."""
    try:
        text = read_text(path, MAX_MANIFEST_BYTES, "utf-8-sig")
    except UnreadableFile as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc}") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        missing = [c for c in MANIFEST_REQUIRED if c not in columns]
        if missing:
            raise ManifestError(f"{path}: manifest lacks column(s) {', '.join(missing)}; found {columns}")
        rows: dict[Path, dict[str, str]] = {}
        lines: dict[Path, int] = {}
        replaced: list[str] = []
        for line, row in enumerate(reader, start=2):
            if not isinstance(row.get("file"), str) or not row["file"].strip():
                raise ManifestError(f"{path}:{line}: empty 'file'")
            target = Path(row["file"].strip())
            if not target.is_absolute():
                target = path.parent / target
            try:
                target = target.resolve()
            except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL in the name
                raise ManifestError(f"{path}:{line}: file {row['file'].strip()!r} cannot be used: {exc}") from None
            if target in rows:
                replaced.append(f"line {lines[target]} (again on line {line})")
            rows[target] = {k: v.strip() if isinstance(v, str) else "" for k, v in row.items() if k is not None}
            lines[target] = line
    except (csv.Error, ValueError) as exc:
        raise ManifestError(f"{path}: not a readable CSV manifest: {exc}") from None
    if replaced:
        log.warning("%s: %d manifest row(s) skipped, naming a file that a later row names again: %s", path,
                    len(replaced), _examples(replaced))
    return rows


def _examples(items: list) -> str:
    """The first few of ``items`` (paths or text) for a warning that counts them all."""
    shown = [display_path(i) if isinstance(i, Path) else i for i in items[:_EXAMPLES]]
    return ", ".join(shown) + (", ..." if len(items) > _EXAMPLES else "")


def discover(paths: Iterable[Path], manifest: dict[Path, dict[str, str]] | None = None) -> list[Candidate]:
    """Audio files under the given files and folders (recursive, sorted, each once).

    What is left out is counted in a warning: files in the folders that are neither audio nor a recording's
    sidecar, paths that are not regular files (a FIFO would hang the hashing), and manifest rows whose file
    exists but is not among the given paths. Manifest rows naming a file that does not exist are reported by the
    caller via ``missing_manifest_files``.
    """
    manifest = manifest or {}
    seen: dict[Path, Candidate] = {}
    not_audio: list[Path] = []
    not_regular: list[Path] = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise UsageError(f"no such file or folder: {root}")
        if root.is_dir():
            entries = sorted(root.rglob("*"))
        else:
            entries = [root]
        for f in entries:
            try:
                mode = f.stat().st_mode
            except OSError:
                mode = 0
            if stat.S_ISDIR(mode):
                continue
            resolved = f.resolve()
            if not stat.S_ISREG(mode):
                not_regular.append(f)
                continue
            explicit = f == root or resolved in manifest
            if resolved in seen:
                continue
            if not (explicit or f.suffix.lower() in AUDIO_EXTENSIONS):
                not_audio.append(f)
                continue
            seen[resolved] = Candidate(f, manifest.get(resolved))
    sidecars = {c.path.with_suffix(".json").resolve() for c in seen.values()}
    # sidecars and manifests (often kept beside the recordings) are expected there
    not_audio = [f for f in not_audio if f.resolve() not in sidecars and f.suffix.lower() != ".csv"]
    if not_audio:
        log.warning("%d file(s) skipped, not audio by their name: %s", len(not_audio), _examples(not_audio))
    if not_regular:
        log.warning("%d path(s) skipped, not regular files: %s", len(not_regular), _examples(not_regular))
    unused = sorted(p for p in manifest if p not in seen and p.exists())
    if unused:
        log.warning("%d manifest row(s) skipped, their files are not under the given paths: %s", len(unused),
                    _examples(unused))
    return list(seen.values())


def missing_manifest_files(manifest: dict[Path, dict[str, str]]) -> list[Path]:
    return sorted(p for p in manifest if not p.exists())


def sha256_file(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")  # Python reads NaN and Infinity; JSON and DuckDB do not


def _sidecar(path: Path) -> dict[str, Any] | None:
    side = path.with_suffix(".json")
    if not side.is_file():
        return None
    try:
        data = json.loads(read_limited(side, MAX_SIDECAR_BYTES).decode("utf-8"), parse_constant=_not_json)
    except (UnreadableFile, ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        log.warning("%s: sidecar ignored, not readable JSON: %s", side, str(exc)[:200] or type(exc).__name__)
        return None
    if not isinstance(data, dict):
        log.warning("%s: sidecar ignored, not a JSON object", side)
        return None
    return data


_TEXT_FIELDS = ("agent_id", "call_id", "started_at")


def _text_value(value: Any) -> str | None:
    """A sidecar's agent_id, call_id or started_at as text: strings, and integers as their digits."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def display_path(path: Path) -> str:
    """The path as text, with undecodable bytes of non-UTF-8 names kept as backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def resolve_metadata(candidate: Candidate, sha256: str, size: int, name_pattern: re.Pattern[str]) -> CallSource:
    """Merge manifest, sidecar and filename metadata into a CallSource (first source that has a field wins)."""
    fields: dict[str, Any] = {}
    source: MetadataFrom = "none"
    sidecar = _sidecar(candidate.path)
    name_match = name_pattern.match(display_path(Path(candidate.path.stem)))
    layers: list[tuple[MetadataFrom, dict | None]] = [
        ("manifest", candidate.manifest_row),
        ("sidecar", sidecar),
        ("filename", name_match.groupdict() if name_match else None),
    ]
    for name, layer in layers:
        if not layer:
            continue
        if source == "none":
            source = name
        for key, value in layer.items():
            if key in _TEXT_FIELDS and _text_value(value) is None and value not in (None, ""):
                log.warning("%s: %s %s in the %s is not text; ignored", candidate.path, key,
                            type(value).__name__, name)
                continue
            if key != "file" and value not in (None, "") and key not in fields:
                fields[key] = _text_value(value) if key in _TEXT_FIELDS else value
    agent_id = str(fields.pop("agent_id", "") or "").strip() or UNKNOWN_AGENT
    if agent_id == UNKNOWN_AGENT:
        log.warning("%s: no agent id in manifest, sidecar or file name; stored under 'unknown'", candidate.path)
    raw_started = fields.pop("started_at", None)
    started_at = parse_timestamp(str(raw_started)) if raw_started is not None else None
    if raw_started is not None and started_at is None:
        log.warning("%s: started_at %r is not a timestamp; left empty", candidate.path, raw_started)
    call_id = str(fields.pop("call_id", "") or "").strip() or sha256[:16]
    extra = {str(k): v for k, v in fields.items()}  # JSON values, stored as JSON (nested ones too)
    return CallSource(
        path=display_path(candidate.path),
        call_id=call_id,
        agent_id=agent_id,
        started_at=started_at,
        audio_sha256=sha256,
        size_bytes=size,
        extra=extra,
        metadata_from=source,
    )
