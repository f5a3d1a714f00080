"""Festival's voices of other languages reading respelt English: the respelling, the engine, and the training-only
extension of a corpus (SynthConfig.foreign_voices)."""
from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from hostside.data import respell as R
from hostside.data.engines import ENGINES
from hostside.data.synth import FOREIGN_LANGUAGES, SynthConfig, synth_corpus

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (`make deps`)")


def test_phonemes_tokenise_longest_first_and_drop_marks():
    assert R.phonemes("hˈeɪ") == ["h", "eɪ"]
    assert R.phonemes("kˈiːmiː") == ["k", "iː", "m", "iː"]
    assert R.phonemes("tʃˈeɪndʒɪŋ") == ["tʃ", "eɪ", "n", "dʒ", "ɪ", "ŋ"]
    assert R.phonemes("bˈʌtn̩") == ["b", "ʌ", "t", "n"]                     # syllabic mark dropped


def test_spelling_follows_each_language_and_its_context_rules():
    kimi = ["h", "eɪ", "k", "ɪ", "m", "i"]
    assert [R.spell(kimi, lang) for lang in R.LANGUAGES] == ["hejkimi", "heikimi", "eichimi", "eiquimi", "хэйкими",
                                                             "हेकिमि", "हेकिमि", "హేకిమి"]
    assert R.spell(["k", "ɑː", "r"], "it") == "car" and R.spell(["k", "ɑː", "r"], "ca") == "car"
    assert R.spell(["tʃ", "ɪ", "p"], "it") == "cip" and R.spell(["tʃ", "ɑ", "p"], "it") == "ciap"
    assert R.spell(["ɡ", "ɛ", "t"], "ca") == "guet"
    assert R.spell(["ʃ", "iː"], "cs") == "ší"
    assert R.spell(["j", "uː"], "ru") == "ю" and R.spell(["p", "l", "eɪ", "ɚ"], "ru") == "плэер"    # iotated letters
    # abugidas: a vowel sign after a consonant, an independent vowel elsewhere, a virama where no vowel follows
    assert R.spell(["ə", "b", "aʊ", "t"], "hi") == "अबाउट्"
    assert R.spell(["s", "t", "ɑː", "p"], "te") == "స్టాప్"
    assert R.spell(["ŋ"], "hi") == "न्ग्"
    with pytest.raises(Exception, match="no respelling"):
        R.respell("hey", "xx")


@needs_espeak
def test_respell_keeps_words_and_punctuation():
    assert R.respell("hey kimi", "cs") == "hej kimi"
    assert R.respell("hey, kimmy?", "fi") == "hei, kimi?"
    assert R.respell("hey keemee!", "it") == "ei chimi!"
    assert R.respell("hey, kimmy?", "ru") == "хэй, кими?"
    assert R.respell("hey keemee!", "hi") == "हे कीमी!"
    for lang in R.LANGUAGES:                                    # every respelling is encodable for festival
        R.respell("she thought about changing the weather", lang).encode(R.ENCODING[lang])


@pytest.fixture
def voices_root(tmp_path, monkeypatch):
    """festival-intl reading its voices from an empty folder (tmp_path), its cache cleared before and after."""
    eng = ENGINES["festival-intl"]
    monkeypatch.setattr(type(eng), "ROOT", tmp_path)
    type(eng)._installed.cache_clear()
    yield eng, tmp_path
    type(eng)._installed.cache_clear()


def test_the_engine_takes_voices_by_language_folder(voices_root):
    eng, root = voices_root
    for d in ("czech/czech_dita/festvox", "finnish/suo_fi_lj_diphone/festvox", "finnish/suopuhe.common",
              "english/kal_diphone/festvox", "catalan/upc_ca_ona_hts/festvox", "klingon/kx_diphone/festvox"):
        (root / d).mkdir(parents=True)
    assert eng.languages() == {"czech_dita": "cs", "suo_fi_lj_diphone": "fi", "upc_ca_ona_hts": "ca"}


def test_one_speaker_behind_several_front_ends_is_taken_once(voices_root):
    eng, root = voices_root
    for voice, units in (("hindi/hindi_NSK_diphone", b"nsk"), ("marathi/marathi_NSK_diphone", b"nsk"),
                         ("telugu/telugu_NSK_diphone", b"nsk"), ("telugu/other_diphone", b"other"),
                         ("russian/msu_ru_nsh_clunits", None)):
        (root / voice / "festvox").mkdir(parents=True)
        if units is not None:
            (root / voice / "group").mkdir()
            (root / voice / "group" / "lpc.group").write_bytes(units)
    assert eng.languages() == {"hindi_NSK_diphone": "hi", "msu_ru_nsh_clunits": "ru", "other_diphone": "te"}


def test_the_key_covers_foreign_voices_only_when_they_are_used():
    off = SynthConfig(fa_stream_seconds=0).key_material()
    assert "foreign_voices" not in off["config"] and "foreign_voices" not in off      # corpora made before keep theirs
    on = SynthConfig(fa_stream_seconds=0, foreign_voices=3).key_material()
    assert on["config"]["foreign_voices"] == 3 and on["foreign_voices"] == ENGINES["festival-intl"].languages(FOREIGN_LANGUAGES)
    assert "foreign_languages" not in on["config"]                      # the default set: corpora made before keep theirs
    ru = SynthConfig(fa_stream_seconds=0, foreign_voices=3, foreign_languages=("ru",))
    assert ru.key_material()["config"]["foreign_languages"] == ("ru",) and ru.key() != SynthConfig(
        fa_stream_seconds=0, foreign_voices=3).key()
    assert set(ru.key_material()["foreign_voices"].values()) <= {"ru"}


def test_foreign_languages_are_checked():
    for bad in (("xx",), ()):
        with pytest.raises(Exception, match="foreign_languages"):
            SynthConfig(foreign_voices=1, foreign_languages=bad).validate()
    SynthConfig(foreign_voices=1, foreign_languages=("ru", "hi")).validate()


TINY = dict(voices=6, positives_per_voice=1, unknown_per_voice=2, few_voice_repeats=1, silence_clips=4,
            unseen_positives=1, unseen_unknown=1, fa_stream_seconds=0, tts_stream_seconds=0, seed=5, workers=2,
            engines=("espeak-ng",))


@pytest.mark.skipif(not ENGINES["festival-intl"].available(),
                    reason="needs festival's voices of other languages (`make deps`)")
def test_foreign_voices_extend_a_corpus_in_the_training_split_only(tmp_path):
    eng = ENGINES["festival-intl"]
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, foreign_voices=1)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)                 # extended, nothing rendered again
    assert ext.meta["config_key"] == cfg.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    voices = eng.languages(FOREIGN_LANGUAGES)                               # the default languages' voices only
    assert len(new) == len(voices) * (1 + 2)                                # unknown : wake word = 2 : 1, as configured
    assert {c.voice for c in new} == set(voices) and all(c.engine == "festival-intl" for c in new)
    assert all(c.split == "train" for c in new)                             # never val, test or unseen
    assert sum(c.label == "hey_kimi" for c in new) == len(voices)
    train_texts = set(ext.meta["negative_texts"]["train"]["words"]) | set(ext.meta["negative_texts"]["train"]["sentences"])
    assert all(c.text in train_texts for c in new if c.label == "unknown")
    whole = synth_corpus(tmp_path / "w", cfg, progress=False)               # made in one go: the same clips
    assert whole.clips == ext.clips
    assert (tmp_path / "c" / new[0].file).read_bytes() == (tmp_path / "w" / new[0].file).read_bytes()
    again = synth_corpus(tmp_path / "c", cfg, progress=False)               # cached
    assert again.clips == ext.clips
