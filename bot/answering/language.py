"""Which language a question is in, so a question the models can't handle well is told so.

The default embedder (all-MiniLM-L6-v2) and the tuned generator are English-only: a question in
German finds the right page but scores far below what an answer needs (a cosine of 0.11 for "Wie viele
Urlaubstage bekomme ich pro Jahr?"), so without this the bot would just say "not found". With it,
the asker learns to ask in English, and the admin learns which setting to change.
"""

from __future__ import annotations

import functools
import unicodedata

# ISO 639-1 codes py3langid returns, for the message. Others are shown as their code.
NAMES = {
    "de": "German", "fr": "French", "es": "Spanish", "pt": "Portuguese", "it": "Italian", "nl": "Dutch",
    "pl": "Polish", "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish", "cs": "Czech",
    "ro": "Romanian", "hu": "Hungarian", "tr": "Turkish", "ru": "Russian", "uk": "Ukrainian", "el": "Greek",
    "ar": "Arabic", "he": "Hebrew", "hi": "Hindi", "mr": "Marathi", "bn": "Bengali", "ta": "Tamil",
    "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "th": "Thai", "vi": "Vietnamese", "id": "Indonesian",
    "en": "English",
}
LATIN_SCRIPT = {"en", "de", "fr", "es", "pt", "it", "nl", "pl", "sv", "da", "no", "fi", "cs", "ro", "hu", "tr",
                "vi", "id"}
MIN_CONFIDENCE = 0.7  # measured: the 122 sample questions (Slack-style English) all score "en" or below 0.5
MIN_LETTERS = 12  # "vpn?" or "pto" says nothing about a language


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _non_latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(not unicodedata.name(c, "LATIN").startswith("LATIN") for c in letters) / len(letters)


def detect(text: str, expected: str = "en") -> str | None:
    """The language code of `text` when it is confidently *not* `expected`, else None.

    Short texts and low-confidence guesses count as `expected` (a mistaken warning is worse than a
    missing one); a text written mostly in a non-Latin script counts as foreign whatever the score.
    """
    if sum(c.isalpha() for c in text) < MIN_LETTERS and _non_latin_share(text) < 0.5:
        return None
    lang, confidence = _identifier().classify(text)
    if lang == expected:
        return None
    if confidence >= MIN_CONFIDENCE or (_non_latin_share(text) >= 0.5 and expected in LATIN_SCRIPT):
        return lang
    return None


def name(code: str) -> str:
    return NAMES.get(code, code)
