"""Find recordings and resolve each one's call metadata.

Metadata comes from, in order: the ``--manifest`` CSV, a sidecar ``NAME.json`` next to the recording, the file
name parsed with ``--name-pattern``. A call without an agent id is stored under ``unknown``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from .errors import ManifestError, UsageError
from .records import CallSource, MetadataFrom

log = logging.getLogger("callqa")

AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .mp3 .flac .ogg .oga .opus .m4a .mp4 .aac .wma .webm .amr .aif .aiff .au .gsm .caf".split()
)
DEFAULT_NAME_PATTERN = "{agent_id}_{started_at}_{call_id}"
UNKNOWN_AGENT = "unknown"
MANIFEST_REQUIRED = ("file", "agent_id", "started_at")
_FIELD = re.compile(r"\{(\w+)\}")
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
    regex, pos = "", 0
    for i, match in enumerate(_FIELD.finditer(pattern)):
        regex += re.escape(pattern[pos : match.start()])
        greedy = ".+" if i == len(fields) - 1 else "[^_]+?"
        regex += f"(?P<{match.group(1)}>{greedy})"
        pos = match.end()
    regex += re.escape(pattern[pos:])
    return re.compile(f"^{regex}$")


def read_manifest(path: Path) -> dict[Path, dict[str, str]]:
    """Rows keyed by resolved file path; relative ``file`` entries are relative to the manifest's folder."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            missing = [c for c in MANIFEST_REQUIRED if c not in columns]
            if missing:
                raise ManifestError(f"{path}: manifest lacks column(s) {', '.join(missing)}; found {columns}")
            rows = {}
            for line, row in enumerate(reader, start=2):
                if not (row.get("file") or "").strip():
                    raise ManifestError(f"{path}:{line}: empty 'file'")
                target = Path(row["file"].strip())
                if not target.is_absolute():
                    target = path.parent / target
                rows[target.resolve()] = {k: (v or "").strip() for k, v in row.items() if k is not None}
            return rows
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable CSV manifest: {exc}") from exc


def discover(paths: Iterable[Path], manifest: dict[Path, dict[str, str]] | None = None) -> list[Candidate]:
    """Audio files under the given files and folders (recursive, sorted, each once).

    Manifest rows naming a file that does not exist are reported by the caller via ``missing_manifest_files``.
    """
    manifest = manifest or {}
    seen: dict[Path, Candidate] = {}
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise UsageError(f"no such file or folder: {root}")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            resolved = f.resolve()
            explicit = root.is_file() or resolved in manifest
            if resolved in seen or not (explicit or f.suffix.lower() in AUDIO_EXTENSIONS):
                continue
            seen[resolved] = Candidate(f, manifest.get(resolved))
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


def _sidecar(path: Path) -> dict[str, Any] | None:
    side = path.with_suffix(".json")
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: sidecar ignored, not readable JSON: %s", side, exc)
        return None
    return data if isinstance(data, dict) else None


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
            if key != "file" and value not in (None, "") and key not in fields:
                fields[key] = value
    agent_id = str(fields.pop("agent_id", "") or "").strip() or UNKNOWN_AGENT
    if agent_id == UNKNOWN_AGENT:
        log.warning("%s: no agent id in manifest, sidecar or file name; stored under 'unknown'", candidate.path)
    raw_started = fields.pop("started_at", None)
    started_at = parse_timestamp(str(raw_started)) if raw_started is not None else None
    if raw_started is not None and started_at is None:
        log.warning("%s: started_at %r is not a timestamp; left empty", candidate.path, raw_started)
    call_id = str(fields.pop("call_id", "") or "").strip() or sha256[:16]
    extra = {k: v for k, v in fields.items() if isinstance(v, (str, int, float, bool))}
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
