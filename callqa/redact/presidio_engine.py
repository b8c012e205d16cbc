"""Microsoft Presidio's analyzer on the already loaded spaCy pipeline, as the engine of per-utterance detection.

Its registry holds Presidio's own recognizers (spaCy NER for person names; patterns for written e-mails, phone
numbers, card numbers, SSNs and Medicare ids) and callqa's recognizers of spoken forms, each wrapped as an
``EntityRecognizer`` whose entities are callqa's labels. One ``analyze`` call runs them all, with Presidio's
score threshold and its removal of duplicate and contained results of one entity type; a recognizer that
cannot match the text (no digit, no "@") is not asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from spacy.language import Language
from spacy.tokens import Doc

from .spans import LABELS, PhiSpan
from .vocabulary import NOT_NAMES

_PRESIDIO_LABEL = {
    "PERSON": "NAME", "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD",
    "US_SSN": "ID", "US_MBI": "ID",
}  # fmt: skip
_PRESIDIO_MIN_SCORE = 0.3  # Presidio's own floor for a bare pattern match without context words
_OWN_SCORE = 0.85  # callqa's recognizers decide themselves (their cues are their context)
_NEEDS_DIGIT = ["PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "US_MBI"]
_HAS_DIGIT = re.compile(r"\d")


def own_recognizer(name: str, find: Callable[[str], list[PhiSpan]], labels: Sequence[str]):
    """A callqa recognizer (text -> PhiSpans) as a Presidio EntityRecognizer of ``labels``."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    class OwnRecognizer(EntityRecognizer):
        def load(self) -> None:
            pass

        def analyze(self, text, entities, nlp_artifacts=None):
            wanted = set(entities or labels)
            return [RecognizerResult(span.label, span.start, span.end, _OWN_SCORE)
                    for span in find(text) if span.label in wanted]

    return OwnRecognizer(supported_entities=list(labels), name=name)


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


def build_analyzer(nlp: Language, own: Sequence[tuple[str, Callable[[str], list[PhiSpan]], Sequence[str]]] = ()):
    """An AnalyzerEngine that tags with ``nlp`` itself (no second spaCy model is loaded), with Presidio's
    recognizers and ``own``: (name, find, labels) of callqa's."""
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
    for name, find, labels in own:
        registry.add_recognizer(own_recognizer(name, find, labels))
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
    analyzer.callqa_entities = list(analyzer.get_supported_entities("en"))  # type: ignore[attr-defined]
    return analyzer


def _unlikely_person(span_text: str) -> bool:
    """spaCy's small model calls many lower-case or ordinary words PERSON ("zip code", "Email").

    Lower-case names are left to the cue recognizer, which knows when a name is coming.
    """
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", span_text)
    return not any(w[0].isupper() for w in words) or all(w.lower() in NOT_NAMES for w in words)


def presidio_spans(analyzer, doc: Doc, context: Sequence[str] = ()) -> list[PhiSpan]:
    """Every recognizer's findings in ``doc`` as PHI spans, less the PERSON tags that are not names.

    ``context``: words said before this utterance (a cue in an earlier turn); Presidio's context enhancement
    counts them beside the words around each match, as it counts its own.
    """
    # _doc_to_nlp_artifact is Presidio's own Doc -> NlpArtifacts step; calling it lets a Doc the
    # analysis stage already parsed be reused instead of running spaCy a second time.
    text = doc.text
    entities = [e for e in analyzer.callqa_entities
                if not (e in _NEEDS_DIGIT and not _HAS_DIGIT.search(text) or e == "EMAIL_ADDRESS" and "@" not in text)]
    artifacts = analyzer.nlp_engine._doc_to_nlp_artifact(doc, "en")
    results = analyzer.analyze(text, language="en", entities=entities, nlp_artifacts=artifacts,
                               score_threshold=_PRESIDIO_MIN_SCORE, context=list(context) or None)
    spans = []
    for r in results:
        label = _PRESIDIO_LABEL.get(r.entity_type, r.entity_type)
        if label not in LABELS or (r.entity_type == "PERSON" and _unlikely_person(text[r.start : r.end])):
            continue
        spans.append(PhiSpan(r.start, r.end, label, f"presidio:{r.recognition_metadata.get('recognizer_name', '')}"))
    return spans
