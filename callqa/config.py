"""Optional YAML config (`--config`) with defaults for `callqa score`; command-line options win over it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import UsageError
from .ingest import DEFAULT_NAME_PATTERN
from .pipeline import ScoreOptions
from .records import StereoChannel
from .transcribe import BUNDLED_MODEL, AsrSettings


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: Optional[Path] = None
    rubrics: list[Path] = Field(default_factory=list)
    manifest: Optional[Path] = None
    name_pattern: str = DEFAULT_NAME_PATTERN
    agent_channel: StereoChannel = "left"
    model: str = BUNDLED_MODEL
    compute_type: str = AsrSettings().compute_type
    beam_size: int = Field(AsrSettings().beam_size, ge=1)
    batch_size: int = Field(AsrSettings().batch_size, ge=0)
    threads: int = Field(0, ge=0)
    workers: int = Field(AsrSettings().workers, ge=0)
    redact: bool = True
    allow_list: list[str] = Field(default_factory=list, description="Names kept by redaction: clinic, agents.")
    organisation: list[str] = Field(default_factory=list,
                                    description="The clinic's (or company's) own names, kept readable by redaction.")

    @field_validator("organisation", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def score_options(self, *, no_redact: bool = False, rubrics: list[Path] | None = None, **cli) -> ScoreOptions:
        """Merge command-line values (None: not given) over this config."""
        merged = {k: v for k, v in self.model_dump().items()}
        merged.update({k: v for k, v in cli.items() if v is not None})
        if rubrics:
            merged["rubrics"] = list(rubrics)
        if merged["agent_channel"] not in get_args(StereoChannel):
            raise UsageError(f"--agent-channel must be left or right, not {merged['agent_channel']!r}")
        asr = AsrSettings(model=merged["model"], compute_type=merged["compute_type"], beam_size=merged["beam_size"],
                          batch_size=merged["batch_size"], cpu_threads=merged["threads"],
                          workers=merged["workers"])
        return ScoreOptions(
            db=merged["db"], rubrics=tuple(merged["rubrics"]), manifest=merged["manifest"],
            name_pattern=merged["name_pattern"], agent_channel=merged["agent_channel"], asr=asr,
            redact=merged["redact"] and not no_redact, allow_list=(*merged["allow_list"], *merged["organisation"]),
        )


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"cannot read --config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of option names to values")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise UsageError(f"{path}: {problems}") from exc
