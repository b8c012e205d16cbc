"""Optional YAML config (`--config`) with defaults for `callqa score`; command-line options win over it.

Problems are reported like a rubric's, one ``FILE:LINE: key: message`` line each (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .audio import AudioLimits
from .errors import ConfigError, UsageError
from .executor import ExecutorName, RayOptions
from .ingest import DEFAULT_NAME_PATTERN
from .inputfiles import MAX_YAML_BYTES, UnreadableFile, read_text
from .pipeline import ScoreOptions
from .records import AgentChannel
from .roles import parse_agent_channel, parse_channels
from .transcribe import BUNDLED_MODEL, AsrSettings
from .yaml_lines import YamlError, format_path, parse_yaml

_LIMITS = AudioLimits()


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: Optional[Path] = None
    rubrics: list[Path] = Field(default_factory=list)
    manifest: Optional[Path] = None
    name_pattern: str = DEFAULT_NAME_PATTERN
    agent_channel: AgentChannel = "auto"
    channels: Optional[Union[str, list[int]]] = Field(None, description="Speaker channels of files with more, e.g. 0,2.")
    model: str = BUNDLED_MODEL
    compute_type: str = AsrSettings().compute_type
    beam_size: int = Field(AsrSettings().beam_size, ge=1)
    batch_size: int = Field(AsrSettings().batch_size, ge=0)
    threads: int = Field(0, ge=0)
    workers: int = Field(AsrSettings().workers, ge=0)
    executor: ExecutorName = "local"
    ray_address: Optional[str] = None
    ray_cpus_per_actor: float = Field(RayOptions().cpus_per_actor, ge=0)
    ray_gpus_per_actor: float = Field(RayOptions().gpus_per_actor, ge=0)
    ray_actors: int = Field(RayOptions().actors, ge=0)
    ray_shared_fs: bool = False
    redact: bool = True
    allow_list: list[str] = Field(default_factory=list, description="Names kept by redaction: clinic, agents.")
    # Recordings refused before decoding (audio.AudioLimits)
    max_duration_s: float = Field(_LIMITS.max_duration_s, gt=0)
    min_sample_rate: int = Field(_LIMITS.min_sample_rate, gt=0)
    max_sample_rate: int = Field(_LIMITS.max_sample_rate, gt=0)
    max_file_mb: float = Field(_LIMITS.max_file_mb, gt=0)
    truncated_ratio: float = Field(_LIMITS.truncated_ratio, ge=0, le=1)
    score_truncated: bool = _LIMITS.score_truncated

    organisation: list[str] = Field(default_factory=list,
                                    description="The clinic's (or company's) own names, kept readable by redaction.")

    @field_validator("organisation", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def score_options(self, *, no_redact: bool = False, reattribute: bool = False, rubrics: list[Path] | None = None,
                      **cli) -> ScoreOptions:
        """Merge command-line values (None: not given) over this config."""
        merged = {k: v for k, v in self.model_dump().items()}
        merged.update({k: v for k, v in cli.items() if v is not None})
        if rubrics:
            merged["rubrics"] = list(rubrics)
        try:
            agent_channel = parse_agent_channel(merged["agent_channel"], "--agent-channel")
            channels = parse_channels(merged["channels"], "--channels")
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        asr = AsrSettings(model=merged["model"], compute_type=merged["compute_type"], beam_size=merged["beam_size"],
                          batch_size=merged["batch_size"], cpu_threads=merged["threads"],
                          workers=merged["workers"])
        return ScoreOptions(
            db=merged["db"], rubrics=tuple(merged["rubrics"]), manifest=merged["manifest"],
            name_pattern=merged["name_pattern"], agent_channel=agent_channel, channels=channels, asr=asr,
            ray=RayOptions(address=merged["ray_address"], cpus_per_actor=merged["ray_cpus_per_actor"],
                           gpus_per_actor=merged["ray_gpus_per_actor"], actors=merged["ray_actors"],
                           shared_fs=merged["ray_shared_fs"]) if merged["executor"] == "ray" else None,
            redact=merged["redact"] and not no_redact, allow_list=(*merged["allow_list"], *merged["organisation"]),
            audio_limits=AudioLimits(**{key: merged[key] for key in AudioLimits._fields}),
            reattribute=reattribute,
        )


def load_config(path: Path | None) -> Config:
    """The config file's values; raises ConfigError with a located line per problem."""
    if path is None:
        return Config()
    try:
        document = parse_yaml(read_text(path, MAX_YAML_BYTES))
    except UnreadableFile as exc:
        raise ConfigError([f"{path}:1: (config): {exc}"]) from None
    except YamlError as exc:
        raise ConfigError([f"{path}:{exc.line}: ({exc.kind}): {exc.problem}"]) from None
    data = {} if document.data is None else document.data
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: (config): expected a mapping of option names to values, "
                           f"not a {type(data).__name__}"])
    problems = [(line, f"{format_path(key, '(config)')}: duplicate key {key[-1]!r}")
                for key, line in document.duplicates]
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            where = tuple(error["loc"])
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append((document.line_of(where), f"{format_path(where, '(config)')}: {message}"))
    if problems:
        raise ConfigError([f"{path}:{line}: {message}" for line, message in sorted(set(problems))])
    return config
