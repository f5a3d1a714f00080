"""The invariants the wake-word evaluation stands on: who and what is in which split, which real speech is
selected, what the corpus cache key covers, and the streaming detector's statistics."""
import math
import wave

import numpy as np
import pytest

from hostside.data import realspeech
from hostside.data.corpus import write_wav
from hostside.data.engines import Voice
from hostside.data.splits import assign, voice_splits
from hostside.data.synth import SynthConfig, negative_texts, split_voices, synth_corpus, task_classes
from hostside.data.texts import hard_negatives, positive_texts, random_sentences, words
from hostside.evaluate import Detector, choose_operating_point, paired_difference, poisson_upper, wilson_interval

FR = (0.6, 0.2, 0.2)


def _espeak(accents, variants):
    return [Voice("espeak-ng", f"{a}+{v}", f"espeak-ng:{a}+{v}", a, v) for a in accents for v in variants]


def test_test_voices_share_neither_accent_nor_variant_with_training():
    voices = _espeak([f"acc{i}" for i in range(8)], [f"var{i}" for i in range(40)])
    voices += [Voice("flite", n, s) for n, s in (("kal", "kal"), ("kal16", "kal"), ("awb", "awb"), ("rms", "rms"),
                                                 ("slt", "slt"))] + [Voice("piper", "joe-medium", "joe")]
    for seed in range(5):
        sp = voice_splits(voices, seed, FR, unseen_speakers=("joe", "slt"))
        by = {s: [v for v, x in sp.items() if x == s] for s in ("train", "val", "test", "unseen")}
        assert all(by[s] for s in ("train", "val", "test"))
        for held in ("val", "test"):
            for field in ("accent", "variant"):
                train = {getattr(v, field) for v in by["train"] if v.accent}
                assert not train & {getattr(v, field) for v in by[held] if v.accent}, (seed, held, field)
            assert not {v.speaker for v in by["train"]} & {v.speaker for v in by[held]}
        # one speaker, one split: flite's kal and kal16 together
        assert len({sp[v] for v in voices if v.speaker == "kal"}) == 1
        assert {v.speaker for v in by["unseen"]} == {"joe", "slt"}
        assert not any(v.speaker in ("joe", "slt") for s in ("train", "val", "test") for v in by[s])


def test_assign_is_a_pure_function_and_fills_every_split():
    names = [f"n{i}" for i in range(10)]
    a, b = assign(names, 3, FR, "x"), assign(list(reversed(names)), 3, FR, "x")
    assert a == b and set(a.values()) == {"train", "val", "test"}
    assert set(assign(["a", "b", "c"], 0, (0.9, 0.05, 0.05), "x").values()) == {"train", "val", "test"}


def test_negative_texts_are_split_by_text_and_positives_never_negatives():
    cfg = SynthConfig()
    neg = negative_texts(cfg)
    for kind in ("words", "sentences"):
        tr, va, te = (set(neg[s][kind]) for s in ("train", "val", "test"))
        assert tr and te and not (tr & te) and not (tr & va) and not (va & te)
    _, keywords, _ = task_classes(cfg)
    positives = {" ".join(words(t)) for t in keywords["hey_kimi"]}
    assert {"hey kimi", "hey kimmy", "hey keemee"} <= positives
    assert any("?" in t for t in keywords["hey_kimi"]) and any("," in t for t in keywords["hey_kimi"])
    for s in ("train", "val", "test"):
        for t in neg[s]["words"] + neg[s]["sentences"]:
            assert " ".join(words(t)) not in positives
            assert "hey kimi" not in " ".join(words(t))


def test_hard_negatives_overlap_and_rhyme_for_any_phrase():
    for phrase in ("hey kimi", "okay nabu", "computer"):
        hn = hard_negatives(phrase)
        assert hn and " ".join(words(phrase)) not in hn
        last = words(phrase)[-1]
        assert any(t.endswith(last[1:]) and t != phrase for t in hn)       # a rhyme of the last word
    assert {"hey", "kimi", "hey jimi", "okay kimi"} <= set(hard_negatives("hey kimi"))
    assert positive_texts("hey kimi", ("hey kimmy",))[:3] == ("hey kimi", "hey, kimi?", "hey kimi!")
    assert all("hey kimi" not in s for s in random_sentences(200, 0, avoid="hey kimi"))


def _fake_asterisk(root):
    """A small asterisk sounds tree: voice folders, a bare language folder with shared digits, a symlink,
    and English-looking names in other languages' folders."""
    tone = 0.1 * np.sin(np.arange(8000) / 5)
    for rel in ("en_US_f_Allison/activated.wav", "en_US_f_Allison/vm-intro.wav",
                "es_MX_f_Allison/enabled.wav", "es_MX_f_Allison/enter-number.wav",
                "fr_CA_f_June/entrez.wav", "it_IT_m_Carlo/benvenuto.wav", "it_IT_m_Carlo/benvenuto.gsm",
                "es/agent-pass.wav", "digits/es/1.wav", "digits/fr/1.wav", "moh_like/en-music.wav",
                "enabled/notalanguage.wav"):
        write_wav(root / rel, tone, sr=8000)
    (root / "es_CO").symlink_to(root / "es_MX_f_Allison")
    return root


def test_real_speech_is_selected_by_language_folder_not_by_substring(tmp_path):
    root = _fake_asterisk(tmp_path / "sounds")
    en = realspeech.speech_sources(("en",), asterisk_root=root, pocketsphinx_root=tmp_path / "none")
    assert [s.voice for s in en] == ["asterisk:en_US_f_Allison"]
    assert sorted(f.name for f in en[0].files) == ["activated.wav", "vm-intro.wav"]   # not es_MX/enabled.wav
    every = {s.voice: s for s in realspeech.speech_sources((), asterisk_root=root, pocketsphinx_root=tmp_path / "none")}
    assert set(every) == {"asterisk:en_US_f_Allison", "asterisk:es_MX_f_Allison", "asterisk:fr_CA_f_June",
                          "asterisk:it_IT_m_Carlo", "asterisk:es"}               # no symlink, no non-language folder
    assert {f.name for f in every["asterisk:es"].files} == {"agent-pass.wav", "1.wav"}   # digits/es, not digits/fr
    assert [f.name for f in every["asterisk:it_IT_m_Carlo"].files] == ["benvenuto.wav"]  # one encoding per prompt
    assert every["asterisk:es_MX_f_Allison"].language == "es"


def test_real_speech_streams_per_voice(tmp_path, monkeypatch):
    root = _fake_asterisk(tmp_path / "sounds")
    monkeypatch.setattr(realspeech, "ASTERISK_SOUNDS", root)
    monkeypatch.setattr(realspeech, "POCKETSPHINX_DATA", tmp_path / "none")
    info = realspeech.build_streams(tmp_path / "fa", languages=("es", "it"))
    assert {s["voice"] for s in info["streams"]} == {"asterisk:es", "asterisk:es_MX_f_Allison", "asterisk:it_IT_m_Carlo"}
    for s in info["streams"]:
        with wave.open(str(tmp_path / s["file"])) as w:
            assert w.getframerate() == 16000 and w.getnframes() / 16000 == pytest.approx(s["seconds"])
    assert info["seconds"] == pytest.approx(sum(s["seconds"] for s in info["streams"]))


def test_cache_key_covers_installed_voices_and_config(monkeypatch):
    from hostside.data import engines
    cfg = SynthConfig(fa_stream_seconds=0)
    k = cfg.key()
    assert SynthConfig(fa_stream_seconds=0, workers=1).key() == k             # workers do not change the clips
    assert SynthConfig(fa_stream_seconds=0, reverb_prob=0.2).key() != k
    monkeypatch.setattr(engines.Flite, "available", lambda self: False)
    assert cfg.key() != k                                                       # flite uninstalled: another corpus
    monkeypatch.setattr(engines.Espeak, "variants", lambda self: ("m1", "f1"))
    k2 = cfg.key()
    monkeypatch.setattr(engines.Espeak, "variants", lambda self: ("m1", "f1", "m2"))
    assert cfg.key() != k2                                                      # another espeak-ng voice installed


def test_cached_corpus_is_not_reused_after_the_engines_change(tmp_path, monkeypatch):
    from hostside.data import engines
    cfg = SynthConfig(engines=("espeak-ng", "flite"), unseen_speakers=(), voices=6, positives_per_voice=1,
                      unknown_per_voice=1, few_voice_repeats=1, silence_clips=3, fa_stream_seconds=0, workers=2,
                      reverb_prob=0)
    a = synth_corpus(tmp_path, cfg, progress=False)
    assert any(c.engine == "flite" for c in a.clips)
    monkeypatch.setattr(engines.Flite, "available", lambda self: False)
    b = synth_corpus(tmp_path, cfg, progress=False)
    assert not any(c.engine == "flite" for c in b.clips)


def test_voice_cap_keeps_every_split():
    cfg = SynthConfig(voices=10, fa_stream_seconds=0)
    sp = split_voices(cfg)
    es = [v for v, s in sp.items() if v.engine == "espeak-ng"]
    assert 3 <= len(es) <= 10 and {sp[v] for v in es} == {"train", "val", "test"}


def test_poisson_upper_bound():
    assert poisson_upper(0) == pytest.approx(-math.log(0.05), rel=1e-6)          # 2.996: "0 in 0.434 h ≤ 6.9/h"
    assert poisson_upper(1) == pytest.approx(4.744, abs=1e-3)
    assert poisson_upper(5) == pytest.approx(10.513, abs=1e-3)
    assert poisson_upper(0) / 0.434 == pytest.approx(6.9, abs=0.01)


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_paired_difference_interval():
    """INT4 − fp32 accuracy on the same clips (results.md, int4_gap.py): the counts, the large-sample limit (Wald on
    the per-item differences), ~95 % coverage where two models agree on most items (where an interval that ignored
    the pairing, or joined the two accuracies with the wrong sign of their correlation, is far too wide), and the
    clips a ±0.5-point interval needs."""
    rng = np.random.default_rng(0)
    a = np.array([1, 1, 1, 0, 0, 1], bool)
    b = np.array([1, 0, 1, 1, 0, 1], bool)
    r = paired_difference(a, b)
    assert (r["n"], r["a_right"], r["b_right"], r["a_only"], r["b_only"]) == (6, 4, 4, 1, 1)
    assert r["difference_points"] == 0 and r["agreement"] == pytest.approx(4 / 6)
    lo, hi = r["ci_points"]
    assert -100 < lo < 0 < hi < 100
    assert paired_difference(b, a)["ci_points"] == pytest.approx([-hi, -lo])          # mirrored when swapped
    n = 200_000
    a = rng.random(n) < 0.8
    b = a ^ (rng.random(n) < 0.05)
    d = b.astype(float) - a
    wald = 100 * (d.mean() + np.array([-1, 1]) * 1.959964 * d.std() / np.sqrt(n))
    r = paired_difference(a, b)
    assert r["ci_points"] == pytest.approx(wald, abs=0.01)
    assert r["items_for_half_width_0.5_points"] == pytest.approx(1.959964 ** 2 * d.var() / 0.005 ** 2, rel=1e-3)
    hits, widths = 0, []
    for _ in range(2000):                       # 320 clips, 82 % right, 5 % of them flipped: the recorded run's case
        a = rng.random(320) < 0.82
        b = a ^ (rng.random(320) < 0.05)
        lo, hi = paired_difference(a, b)["ci_points"]
        hits += lo <= 100 * 0.05 * (0.18 - 0.82) <= hi
        widths.append(hi - lo)
    assert 0.93 <= hits / 2000 <= 0.97 and 4.0 < np.mean(widths) < 6.0        # unpaired (φ = 0): 12.3 wide
    same = paired_difference(a, a)
    lo, hi = same["ci_points"]                  # one model against itself: 0, known to within the Wilson asymmetry
    assert -1.5 < lo < 0 < hi < 1.5 and same["items_for_half_width_0.5_points"] is None
    with pytest.raises(ValueError):
        paired_difference(a, a[:-1])


def test_detector_and_operating_point_on_validation_only():
    det = Detector(0.9, smooth=3)
    post = np.zeros(100)
    post[10:13] = 0.95
    post[50] = 0.95
    post[70:80] = 0.99
    assert det.triggers(post) == [12, 72] and Detector(0.9, 1).triggers(post) == [10, 50, 70]
    # validation positives: peaks 0.5 … 0.99; the val stream has one window at 0.97 (smoothing 1)
    val_pos = [np.full(5, p) for p in np.linspace(0.5, 0.99, 50)]
    stream = np.zeros(36000)
    stream[1000] = 0.97
    op = choose_operating_point(val_pos, stream, 1.0, 100.0, 1.0, target_fa_per_hour=0.5, smooth=1)
    assert op["val_false_accepts"] == 0 and op["threshold"] > 0.97 and op["val_met"]
    op2 = choose_operating_point(val_pos, stream, 1.0, 100.0, 1.0, target_fa_per_hour=1.0, smooth=1)
    assert op2["val_false_accepts"] == 1 and op2["threshold"] <= 0.5 and op2["val_frr"] == 0.0


def test_klettres_people_are_split_by_language_folder(tmp_path, monkeypatch):
    root = tmp_path / "klettres"
    for rel in ("en/alpha/A.ogg", "en_GB/syllab/ka.ogg", "fr/alpha/B.ogg", "cs/alpha/C.ogg", "pics/x.ogg",
                "icons/y.ogg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    (root / "cs.txt").write_text("not a folder")
    srcs = realspeech.klettres_sources(root)
    assert [s.voice for s in srcs] == ["klettres:cs", "klettres:en", "klettres:en_GB", "klettres:fr"]
    assert {s.voice: s.language for s in srcs}["klettres:en_GB"] == "en"
    from hostside.data import synth
    monkeypatch.setattr(realspeech, "KLETTRES", root)
    sp = synth.human_splits(SynthConfig(human_negatives=1))
    assert set(sp.values()) == {"train", "val", "test"} and len(sp) == 4
    assert synth.human_splits(SynthConfig(human_negatives=0)) == {}
