"""Speech in other languages with its sounds named (SynthConfig.native_negatives, `pqlr data synth
--native-negatives`): espeak-ng's voices of other languages saying words of Debian's word lists, their phoneme
targets read in that language (benchmarks/quality/attempts.md §41)."""
from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from hostside.data.corpus import CLIP_SAMPLES, Clip
from hostside.data.phonetic import clip_targets, reading_accent, tokens
from hostside.data.synth import SynthConfig, synth_corpus
from hostside.data.texts import (NATIVE_HELD_OUT, NATIVE_LANGUAGES, NATIVE_MANY, NATIVE_WIDE, NATIVE_WORDLISTS,
                                 WORDLIST_ROOT, native_words)
from hostside.errors import PqlrError, ToolchainMissing
from test_rhyme_negatives import TINY

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (`make deps`)")
DEFAULT_LISTS = [NATIVE_WORDLISTS[x] for x in NATIVE_LANGUAGES]
needs_lists = pytest.mark.skipif(not all((WORDLIST_ROOT / f).is_file() for f, _ in DEFAULT_LISTS),
                                 reason="needs Debian's word lists: `sudo apt-get install "
                                 + " ".join(p for _, p in DEFAULT_LISTS) + "` (or `make deps`)")


def test_the_conversation_and_validation_languages_stay_unheard():
    assert not {"en", "cs", "nl"} & set(NATIVE_WORDLISTS)     # the conversation's and validation's casts
    # NATIVE_HELD_OUT: no language of the telephone prompts (en es fr it ru), of the people reading letters in val or
    # test (ar en_GB ru uk; de en fr tn) or of the conversation
    held_out = set(NATIVE_HELD_OUT) | set(NATIVE_MANY) | set(NATIVE_WIDE)
    assert not {"en", "cs", "nl", "es", "fr", "it", "ru", "ar", "uk", "de", "tn"} & held_out
    assert not {"sk", "af", "gl", "be"} & set(NATIVE_WORDLISTS)   # near twins of Czech, Dutch, Spanish, Russian
    assert set(NATIVE_LANGUAGES) | held_out <= set(NATIVE_WORDLISTS)
    assert len(set(NATIVE_WIDE)) == len(NATIVE_WIDE) and set(NATIVE_MANY) < set(NATIVE_WIDE)


def test_a_word_list_keeps_words_of_letters_only(tmp_path):
    (tmp_path / "dict").mkdir()
    (tmp_path / "dict" / "ngerman").write_text("Zimmer\nAbend's\nGPS\nx\nhin-und\nStraße\nA4\nüberaus\nSehrsehrlang\n",
                                              encoding="utf-8")
    assert native_words("de", root=tmp_path) == ("Zimmer", "Straße", "überaus")
    with pytest.raises(ToolchainMissing, match="apt-get install wfrench"):
        native_words("fr", root=tmp_path)
    with pytest.raises(ValueError, match="no word list"):
        native_words("cs", root=tmp_path)


def test_a_hunspell_dictionary_is_read_in_its_own_encoding(tmp_path):
    """hunspell-* packages: the count line and comments dropped, words cut at their flags or fields, decoded as the .aff
    says (here ISO8859-2, as Debian's Slovenian and Polish dictionaries are)."""
    (tmp_path / "hunspell").mkdir()
    (tmp_path / "hunspell" / "sl_SI.aff").write_bytes(b"SET ISO8859-2\nTRY abc\n")
    (tmp_path / "hunspell" / "sl_SI.dic").write_bytes("5\n# comment\nšmarnica/AB\nbežen\tpo:adj\nNATO/X\n"
                                                      "ab-cd/Y\nžaba\n".encode("iso8859-2"))
    native_words.cache_clear()
    assert native_words("sl", root=tmp_path) == ("šmarnica", "bežen", "žaba")
    (tmp_path / "hunspell" / "sl_SI.aff").write_bytes(b"SET UTF-8\n")       # the same words written in UTF-8
    (tmp_path / "hunspell" / "sl_SI.dic").write_text("2\nžaba/A\nšmarnica\n", encoding="utf-8")
    native_words.cache_clear()
    assert native_words("sl", root=tmp_path) == ("žaba", "šmarnica")
    with pytest.raises(ToolchainMissing, match="apt-get install hunspell-hu"):
        native_words("hu", root=tmp_path)
    # the encoding's line after a byte-order mark (Debian's Kazakh .aff) or with a tab (its Arabic one)
    for aff in (b"\xef\xbb\xbfSET UTF-8\r\nTRY abc\r\n", b"# words\nSET\tUTF-8\n"):
        (tmp_path / "hunspell" / "sl_SI.aff").write_bytes(aff)
        native_words.cache_clear()
        assert native_words("sl", root=tmp_path) == ("žaba", "šmarnica")
    native_words.cache_clear()


@needs_espeak
def test_a_clip_of_another_languages_voice_is_read_in_that_language():
    de = Clip(file="a.wav", label="unknown", split="train", voice="de+m3", text="Zimmer", spoken=8000)
    en = Clip(file="b.wav", label="unknown", split="train", voice="en-gb-scotland+m3", text="Zimmer", spoken=8000)
    fl = Clip(file="c.wav", label="unknown", split="train", voice="kal", text="Zimmer", engine="flite", spoken=8000)
    bare = Clip(file="d.wav", label="unknown", split="train", voice="v1", text="Zimmer", spoken=8000)
    assert [reading_accent(c) for c in (de, en, fl, bare)] == ["de", "en-us", "en-us", "en-us"]
    assert tokens("Zimmer", "de") != tokens("Zimmer", "en-us")            # German /ts/ …, English /z/ …
    targets, vocab, stats = clip_targets([de, en, fl])
    assert [vocab[i - 1] for i in targets[0]] == tokens("Zimmer", "de")
    assert targets[1] == targets[2] == [vocab.index(s) + 1 for s in tokens("Zimmer", "en-us")]
    assert stats["other_languages"] == {"de": 1} and stats["texts_read"] == 2
    # a word espeak-ng reads as English inside French is marked "(en)" … "(fr)": the marks are not sounds
    assert not {"(", ")", "f"} & set(tokens("anthrène pilliez", "fr"))


@needs_espeak
@needs_lists
def test_native_negatives_extend_a_corpus_in_the_training_split_only(tmp_path):
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, native_negatives=2)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)
    assert ext.meta["config_key"] == cfg.key() != base_cfg.key() and ext.clips[: len(base.clips)] == base.clips
    new = ext.clips[len(base.clips):]
    assert len(new) == 2 * len(NATIVE_LANGUAGES) == ext.meta["native_negatives"]["clips"]
    variants = {c.voice.partition("+")[2] for c in base.clips if c.split == "train" and c.engine == "espeak-ng"}
    held_out = {c.voice.partition("+")[2] for c in base.clips if c.split != "train" and c.engine == "espeak-ng"}
    for c in new:
        lang, _, variant = c.voice.partition("+")
        assert c.split == "train" and c.label == "unknown" and c.engine == "espeak-ng"
        assert lang in NATIVE_LANGUAGES and variant in variants and variant not in held_out
        assert 1 <= len(c.text.split()) <= 2 and all(w in native_words(lang) for w in c.text.split())
    assert {c.voice.partition("+")[0] for c in new} == set(NATIVE_LANGUAGES)
    targets, vocab, stats = clip_targets(new)               # most fit the window: a target in their language
    assert sum(1 for t in targets if t) >= len(new) // 2 and set(stats["other_languages"]) <= set(NATIVE_LANGUAGES)
    for t, c in zip(targets, new):
        if t:
            assert c.spoken <= CLIP_SAMPLES and [vocab[i - 1] for i in t] == tokens(c.text, reading_accent(c))
    assert synth_corpus(tmp_path / "w", cfg, progress=False).clips == ext.clips          # made whole: the same
    with pytest.raises(PqlrError, match="native_negatives"):
        replace(cfg, native_negatives=-1).validate()
    with pytest.raises(PqlrError, match="espeak-ng"):
        replace(cfg, engines=("flite",)).validate()
    assert replace(cfg, native_languages=("sv", "da")).key() not in (cfg.key(), base_cfg.key())
    for bad in (replace(cfg, native_languages=("cs",)), replace(cfg, native_languages=()),
                replace(base_cfg, native_languages=("da",))):
        with pytest.raises(PqlrError, match="native_languages"):
            bad.validate()


def test_the_cli_names_the_sets_of_languages():
    from hostside.cli import _native_languages
    assert _native_languages(None) is None and _native_languages("sv,da,") == ("sv", "da")
    assert _native_languages("many") == NATIVE_MANY and _native_languages("wide") == NATIVE_WIDE
    assert _native_languages("held-out") == NATIVE_HELD_OUT
