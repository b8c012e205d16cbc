"""Microsoft Presidio's analyzer on the already loaded spaCy pipeline: spaCy NER for person names, and
Presidio's pattern recognizers for written e-mails, phone numbers, card numbers, SSNs and Medicare ids."""

from __future__ import annotations

import re

from spacy.language import Language
from spacy.tokens import Doc

from .spans import PhiSpan
from .vocabulary import NOT_NAMES

_PRESIDIO_LABEL = {
    "PERSON": "NAME", "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD",
    "US_SSN": "ID", "US_MBI": "ID",
}  # fmt: skip
_PRESIDIO_MIN_SCORE = 0.3  # Presidio's own floor for a bare pattern match without context words


def _offline_email_recognizer():
    """Presidio's e-mail recognizer, validating domains against tldextract's bundled suffix snapshot.

    Stock tldextract downloads the public suffix list on first use; a QA box for clinic calls must not.
    """
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    offline = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return offline(pattern_text).fqdn != ""

    return OfflineEmailRecognizer()


def build_analyzer(nlp: Language):
    """An AnalyzerEngine that tags with ``nlp`` itself: no second spaCy model is loaded."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UsMbiRecognizer,
        UsSsnRecognizer,
    )

    ner_labels = nlp.get_pipe("ner").labels if "ner" in nlp.pipe_names else ()  # type: ignore[attr-defined]
    engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": nlp.meta.get("name", "callqa")}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping={"PERSON": "PERSON"},
            labels_to_ignore=[label for label in ner_labels if label != "PERSON"],
        ),
    )
    engine.nlp = {"en": nlp}  # type: ignore[assignment]  # already loaded, so AnalyzerEngine does not call engine.load() (spacy.load)
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        SpacyRecognizer(supported_entities=["PERSON"]),
        _offline_email_recognizer(),
        PhoneRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        UsMbiRecognizer(),
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _unlikely_person(span_text: str) -> bool:
    """spaCy's small model calls many lower-case or ordinary words PERSON ("zip code", "Email").

    Lower-case names are left to the cue recognizer, which knows when a name is coming.
    """
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", span_text)
    return not any(w[0].isupper() for w in words) or all(w.lower() in NOT_NAMES for w in words)


def presidio_spans(analyzer, doc: Doc) -> list[PhiSpan]:
    """Presidio's findings in ``doc`` as PHI spans, less the PERSON tags that are not names."""
    # _doc_to_nlp_artifact is Presidio's own Doc -> NlpArtifacts step; calling it lets a Doc the
    # analysis stage already parsed be reused instead of running spaCy a second time.
    artifacts = analyzer.nlp_engine._doc_to_nlp_artifact(doc, "en")
    results = analyzer.analyze(doc.text, language="en", nlp_artifacts=artifacts, score_threshold=_PRESIDIO_MIN_SCORE)
    spans = []
    for r in results:
        if r.entity_type not in _PRESIDIO_LABEL or (
            r.entity_type == "PERSON" and _unlikely_person(doc.text[r.start : r.end])
        ):
            continue
        source = f"presidio:{r.recognition_metadata.get('recognizer_name', '')}"
        spans.append(PhiSpan(r.start, r.end, _PRESIDIO_LABEL[r.entity_type], source))
    return spans
