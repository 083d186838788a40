"""Japanese reading mode: kanji -> kana readings with pyopenjtalk-plus (optional `ja` extra).

CosyVoice2 reads kanji with Chinese readings unless told otherwise, so for Japanese text every
run of Japanese script that contains kanji is analysed by OpenJTalk (its dictionary ships inside
the pyopenjtalk-plus wheel; nothing is downloaded) and each word that contains a kanji is
replaced by its reading in hiragana. Kana, Latin letters, digits and punctuation are kept as
they are. Readings come from the dictionary's orthographic reading (東京 -> とうきょう).
"""
from __future__ import annotations

import re
from functools import lru_cache

from .errors import TextFrontendError

# a run of Japanese script (kanji incl. 々〆ヶ, hiragana, katakana, prolonged sound mark)
_JA_RUN = re.compile(r"[\u3005\u3006\u30f6\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_KANJI = re.compile(r"[\u3005\u3006\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KATAKANA_TO_HIRAGANA = {c: c - 0x60 for c in range(0x30A1, 0x30F7)}


def katakana_to_hiragana(text: str) -> str:
    return text.translate(_KATAKANA_TO_HIRAGANA)


@lru_cache(maxsize=1)
def _openjtalk():
    try:
        import pyopenjtalk
    except ImportError:
        raise TextFrontendError(
            "Japanese reading mode needs pyopenjtalk-plus: pip install 'sentis-tts[ja]' "
            "(or turn the reading mode off: japanese_reading=False)") from None
    return pyopenjtalk


def available() -> bool:
    """Whether the reading mode can run here (pyopenjtalk-plus importable)."""
    try:
        _openjtalk()
    except TextFrontendError:
        return False
    return True


def _run_to_kana(run: str) -> str:
    out = []
    for node in _openjtalk().run_frontend(run):
        surface = node["string"]
        reading = node.get("read") or ""
        if _KANJI.search(surface) and reading and reading != "*" and not _KANJI.search(reading):
            out.append(katakana_to_hiragana(reading.replace("’", "")))
        else:
            out.append(surface)
    return "".join(out)


def kanji_to_kana(text: str) -> str:
    """Replace every kanji-bearing word of `text` by its hiragana reading."""
    return _JA_RUN.sub(lambda m: _run_to_kana(m.group(0)) if _KANJI.search(m.group(0)) else m.group(0), text)
