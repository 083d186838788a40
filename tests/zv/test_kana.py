"""Accent kana (runtime_ref/zipvoice/kana.py), the Japanese front-end the Unity runtime mirrors:
the fork's pitch rules on hand-written kana (no OpenJTalk needed), its refusals, and — where
pyopenjtalk-plus is installed — that kana written from OpenJTalk's labels gives OpenJTalk's tokens."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime_ref.errors import RuntimeRefError
from runtime_ref.zipvoice.kana import MORA_PHONEMES, accent_kana_tokens, kana_table_tsv, to_katakana
from runtime_ref.zipvoice.text import ACCENT_RULES, accent_level


def j(kana: str, rule: str = "v3") -> str:
    return " ".join(accent_kana_tokens(kana, rule))


def test_fork_v3_table():
    """The fork's G2P v3 before/after table (docs: 私は, 橋, 箸, こんにちは, 東京), written as accent kana."""
    assert j("ワタシワ") == "[L] w a [H] t a sh i w a"
    assert j("ハシ") == j("ハシ'") == "[L] h a [H] sh i"  # odaka = flat inside the phrase (OpenJTalk labels both as accent n)
    assert j("ハ'シ") == "[H] h a [L] sh i"
    assert j("コンニチワ") == "[L] k o [H] N n i ch i w a"
    assert j("トーキョー") == j("とうきょう".replace("う", "ー")) == "[L] t o [H] o ky o o"


def test_rules_v1_v2_v3_on_one_phrase():
    # ア'シタ: nucleus on the 1st mora; タベ'ル: on the 2nd of 3
    assert [j("タベ'ル", r) for r in ("v1", "v2", "v3")] == ["[H] t a [L] b e r u", "[H] t a b e [L] r u", "[L] t a [H] b e [L] r u"]
    assert accent_level(0, 1) == "H" and accent_level(-1, 1) == "L" and accent_level(-1, 2) == "H" and accent_level(1, 2) == "L"
    assert set(ACCENT_RULES) == {"v1", "v2", "v3"}


def test_marks_phrases_pauses_and_question():
    assert j("デス’") == "[L] d e [H] s U" and j("デ'ス’") == "[H] d e [L] s U"
    assert j("イッ'タ") == "[L] i [H] cl [L] t a"
    assert j("アメ ガ") == "[L] a [H] m e | [H] g a"  # keys 2_2 and 1_1 differ -> |
    assert j("アメ/アメ") == "[L] a [H] m e [L] a [H] m e"  # same key 2_2: no | (as the fork), the level carries over
    assert j("、、アメ。。ガ、") == "[L] a [H] m e pau [H] g a"  # leading/trailing pauses dropped, runs merged
    assert j("アメ？") == "[L] a [H] m e [Q]" and j("アメ?") == j("アメ？")
    assert j("きゃんぷ") == j("キャンプ") == "[L] ky a [H] N p u"
    assert to_katakana("ぢゃゔ") == "ヂャヴ"


@pytest.mark.parametrize("bad", ["'ア", "’ア", "ア漢字", "ーア", "ンー", "abc"])
def test_refusals_name_the_problem(bad):
    with pytest.raises(RuntimeRefError, match="accent kana"):
        accent_kana_tokens(bad)


def test_kana_table_file_round_trips():
    rows = [line.split("\t") for line in kana_table_tsv().splitlines()]
    assert {k: tuple(v.split(" ")) for k, v in rows} == MORA_PHONEMES
    assert len(MORA_PHONEMES) > 120 and MORA_PHONEMES["シャ"] == ("sh", "a") and MORA_PHONEMES["ヲ"] == ("o",)


def test_kana_table_matches_openjtalk_per_mora():
    pyopenjtalk = pytest.importorskip("pyopenjtalk", reason="pyopenjtalk-plus is not installed (pip install pyopenjtalk-plus)")
    skip = {"ヰ", "ヱ", "ヮ", "ヵ", "ヶ", "ァ", "ィ", "ゥ", "ェ", "ォ", "ャ", "ュ", "ョ", "ッ"}  # not words on their own in OpenJTalk
    bad = {}
    for k, v in MORA_PHONEMES.items():
        if k in skip:
            continue
        got = tuple(p.lower() if p in "AIUEO" else p for p in pyopenjtalk.g2p("ア" + k + "ア").split())
        if got != ("a",) + v + ("a",):
            bad[k] = got
    assert not bad, bad


def test_to_accent_kana_round_trip_on_japanese_corpus():
    """accent_kana_tokens(to_accent_kana(t)) == japanese_accent_tokens(t) on the corpus's Japanese lines
    (OpenJTalk sometimes puts a pause inside an accent phrase on mixed-script lines: those are counted, not failed)."""
    pytest.importorskip("pyopenjtalk", reason="pyopenjtalk-plus is not installed (pip install pyopenjtalk-plus)")
    from runtime_ref.text.normalize import detect_language
    from runtime_ref.zipvoice.kana import to_accent_kana
    from runtime_ref.zipvoice.text import japanese_accent_tokens

    corpus = Path(__file__).resolve().parents[1] / "text" / "corpus.jsonl"
    lines = [json.loads(s) for s in corpus.read_text(encoding="utf-8").splitlines() if s.strip()]
    ja = [t for t in lines if detect_language(t) == "ja"]
    same = sum(accent_kana_tokens(to_accent_kana(t)) == japanese_accent_tokens(t) for t in ja)
    assert len(ja) >= 100 and same >= 0.85 * len(ja), f"{same}/{len(ja)}"
    pure = ["明日は晴れです。", "今日は、天気がいいですか？", "私の名前は田中です。", "吾輩は猫である。名前はまだ無い。",
            "東京特許許可局に行った。", "朝7時30分に起きて、8時に家を出ます。", "カタカナのテキスト：コンピューター、インターネット、ゲーム。"]
    for t in pure:
        assert accent_kana_tokens(to_accent_kana(t)) == japanese_accent_tokens(t), t


def test_frontend_reads_kana_only_on_japanese_bundles():
    from runtime_ref.zipvoice.text import ZipVoiceFrontend

    ja = ZipVoiceFrontend({"_": 0, "[L]": 1, "[H]": 2, "h": 3, "a": 4, "sh": 5, "i": 6}, "japanese_accent")
    assert ja.ids("ハシ", kana=True) == [1, 3, 4, 2, 5, 6]  # the trailing '.' of add_punctuation is a dropped pause
    with pytest.raises(RuntimeRefError, match="Japanese accent bundle"):
        ZipVoiceFrontend({"_": 0, "a": 1}).ids("ハシ", kana=True)
    with pytest.raises(RuntimeRefError, match="unknown accent rule"):
        ZipVoiceFrontend({"_": 0}, "japanese_accent", "v9")
