import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests' helper modules (audio_helpers, db_helpers, ...)


@pytest.fixture(scope="session")
def transcriber():
    from callqa.transcribe import Transcriber

    return Transcriber()


@pytest.fixture(scope="session")
def nlp():
    from callqa.nlp import load_nlp

    return load_nlp()
