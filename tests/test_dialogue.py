"""Real conversational speech as negatives: Fish Fillets NG's dialogue, chosen by folder, split by game level,
added to a corpus without rendering its other clips again, and part of the validation negatives."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from hostside.data import realspeech
from hostside.data.corpus import write_wav
from hostside.data.synth import SynthConfig, synth_corpus

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (`make deps`)")


def _ogg(path, seconds: float, freq: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 22050)) / 22050
    wav = path.with_suffix(".wav")
    write_wav(wav, 0.3 * np.sin(2 * np.pi * freq * t) * (1 + np.sin(2 * np.pi * 3 * t)), 22050)
    subprocess.run(["sox", str(wav), str(path)], check=True, capture_output=True)
    wav.unlink()


@pytest.fixture(scope="module")
def fillets(tmp_path_factory):
    """A small tree laid out as Debian's fillets-ng-data packages lay theirs out."""
    root = tmp_path_factory.mktemp("fillets") / "sound"
    lines = {"keys/cs": 3, "keys/nl": 2, "gods/cs": 3, "gods/en": 1, "barrel/cs": 2, "barrel/nl": 2,
             "share/borejokes/cs": 2, "elk/en": 1}
    for i, (d, n) in enumerate(lines.items()):
        for j in range(n):
            _ogg(root / d / f"line-{j}.ogg", 1.2 + 0.3 * j, 180 + 20 * i)
    empty = root / "barrel" / "nl" / "line-9.ogg"               # a line that decodes to nothing (Debian's has two)
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", str(empty), "trim", "0", "0"], check=True, capture_output=True)
    lines["barrel/nl"] += 1
    _ogg(root / "share" / "sp-bubles_00.ogg", 0.5, 900)        # a sound effect, not speech
    _ogg(root / "gods" / "ambient.ogg", 0.5, 700)               # a level's own sound, not in a language folder
    _ogg(root / "ab" / "x.ogg", 0.5, 600)                       # a two-letter level name is not a language folder
    return root, lines


def test_dialogue_sources_are_chosen_by_language_folder(fillets):
    root, lines = fillets
    srcs = {s.voice: s for s in realspeech.dialogue_sources(root=root)}
    assert sorted(srcs) == ["fillets-ng:cs", "fillets-ng:en", "fillets-ng:nl"]
    for s in srcs.values():
        assert len(s.files) == sum(n for d, n in lines.items() if d.endswith("/" + s.language))
        assert all(f.parent.name == s.language for f in s.files)
    assert srcs["fillets-ng:en"].package == "fillets-ng-data" and srcs["fillets-ng:cs"].package == "fillets-ng-data-cs"
    assert [s.voice for s in realspeech.dialogue_sources(("nl",), root=root)] == ["fillets-ng:nl"]
    assert realspeech.dialogue_sources(root=root / "nowhere") == []


def test_the_key_covers_dialogue_only_when_it_is_used(fillets, monkeypatch):
    monkeypatch.setattr(realspeech, "FILLETS_SOUNDS", fillets[0])
    off = SynthConfig(fa_stream_seconds=0).key_material()
    assert "dialogue_negatives" not in off["config"] and "dialogue" not in off     # corpora made before keep their key
    on = SynthConfig(fa_stream_seconds=0, dialogue_negatives=2).key_material()
    assert on["config"]["dialogue_negatives"] == 2
    assert on["dialogue"] == [("fillets-ng:cs", 10), ("fillets-ng:en", 2), ("fillets-ng:nl", 5)]


TINY = dict(voices=6, positives_per_voice=1, unknown_per_voice=1, few_voice_repeats=1, silence_clips=4,
            unseen_positives=1, unseen_unknown=1, fa_stream_seconds=0, tts_stream_seconds=0, seed=3, workers=2,
            engines=("espeak-ng",))


def test_dialogue_extends_a_corpus_as_if_made_whole(fillets, monkeypatch, tmp_path):
    root, lines = fillets
    monkeypatch.setattr(realspeech, "FILLETS_SOUNDS", root)
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, dialogue_negatives=2)
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    before = {c.file: (tmp_path / "c" / c.file).stat().st_mtime_ns for c in base.clips}
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)                  # extended: nothing rendered again
    assert ext.meta["config_key"] == cfg.key() and ext.clips[: len(base.clips)] == base.clips
    assert {c.file: (tmp_path / "c" / c.file).stat().st_mtime_ns for c in base.clips} == before
    whole = synth_corpus(tmp_path / "w", cfg, progress=False)                # made in one go
    assert [c.file for c in whole.clips] == [c.file for c in ext.clips]
    new = ext.clips[len(base.clips):]
    assert len(new) == 2 * sum(lines.values())
    for a, b in zip(new, whole.clips[len(base.clips):]):
        assert a == b and (tmp_path / "c" / a.file).read_bytes() == (tmp_path / "w" / b.file).read_bytes()
    # split by game level, every language of a level in the same split; train and val only (the test streams
    # are other packages)
    split_of_level: dict = {}
    for c in new:
        assert c.label == "unknown" and c.engine == "human" and c.split in ("train", "val")
        split_of_level.setdefault(c.text.split("/")[0], set()).add(c.split)
    assert all(len(v) == 1 for v in split_of_level.values())
    assert {s for v in split_of_level.values() for s in v} == {"train", "val"}
    assert ext.meta["dialogue"]["levels"]["val"] and ext.meta["dialogue"]["levels"]["train"]
    # the val levels' lines are validation negative streams, and the protocol uses them
    streams = ext.meta["dialogue_val_streams"]["streams"]
    assert streams and all((tmp_path / "c" / s["file"]).is_file() for s in streams)
    val_lines = sum(n for d, n in lines.items() if d.split("/")[-2] in ext.meta["dialogue"]["levels"]["val"])
    assert sum(s["files"] for s in streams) == val_lines
    from hostside.data.features import FrontEnd
    from hostside.evaluate import _val_negative_streams
    audios, what = _val_negative_streams(ext, FrontEnd())
    assert len(audios) == len(streams) and "dialogue" in what
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["meta"]["config_key"] == cfg.key()


def test_conversation_is_never_trained_on_and_splits_by_cast(fillets, monkeypatch, tmp_path):
    """`conversation`: the dialogue as streams only, the Dutch cast's for validation and the Czech and English
    casts' for the test; a corpus made without it is extended, nothing rendered again; not with dialogue_negatives."""
    from hostside.data.synth import CONVERSATION_VAL_LANGUAGES
    from hostside.errors import PqlrError
    root, lines = fillets
    monkeypatch.setattr(realspeech, "FILLETS_SOUNDS", root)
    base_cfg = SynthConfig(**TINY)
    cfg = replace(base_cfg, conversation=True)
    assert "conversation" not in base_cfg.key_material()["config"]          # corpora made before keep their key
    assert cfg.key_material()["dialogue"] == [("fillets-ng:cs", 10), ("fillets-ng:en", 2), ("fillets-ng:nl", 5)]
    with pytest.raises(PqlrError, match="use one of them"):
        replace(cfg, dialogue_negatives=1).validate()
    base = synth_corpus(tmp_path / "c", base_cfg, progress=False)
    ext = synth_corpus(tmp_path / "c", cfg, progress=False)
    assert ext.clips == base.clips and ext.meta["config_key"] == cfg.key()  # streams only: no clip trained on
    conv = ext.meta["conversation"]
    val = {s["language"]: s for s in conv["val"]["streams"]}
    test = {s["language"]: s for s in conv["test"]["streams"]}
    assert set(val) == set(CONVERSATION_VAL_LANGUAGES) == {"nl"} and set(test) == {"cs", "en"}   # by cast, disjoint
    for part in (val, test):
        for lang, s in part.items():
            n = sum(k for d, k in lines.items() if d.endswith("/" + lang))
            assert s["files"] + s["skipped"] == n and (tmp_path / "c" / s["file"]).is_file()
    from hostside.data.features import FrontEnd
    from hostside.evaluate import _val_negative_streams
    audios, what = _val_negative_streams(ext, FrontEnd())
    assert len(audios) == 1 and "conversation (fillets-ng:nl" in what      # validation hears the Dutch cast only


def test_eval_reports_conversation_beside_real_speech(trained_pipeline, fillets, monkeypatch, tmp_path):
    """The test's conversation is a figure of its own at the chosen threshold (count, hours, bound, per cast) and a
    curve on the DET; validation's negatives include the val cast, and the telephone real speech is unchanged."""
    from hostside import api
    from hostside.evaluate import Detector, stream_posteriors
    from hostside.train import load_checkpoint, predict
    monkeypatch.setattr(realspeech, "FILLETS_SOUNDS", fillets[0])
    corpus = tmp_path / "corpus"
    shutil.copytree(trained_pipeline["corpus"], corpus)
    made = json.loads((corpus / "manifest.json").read_text())["meta"]["config"]
    c = api.synth(corpus, progress=False, **{**made, "conversation": True})
    ck = trained_pipeline["root"] / "m.pt"
    ev_before = api.evaluate(ck, trained_pipeline["corpus"], tmp_path / "a")
    ev = api.evaluate(ck, corpus, tmp_path / "b")
    before, ww = ev_before["wakeword"], ev["wakeword"]
    assert "conversation" not in before and "val cast's conversation" in ww["operating_point"]["chosen_on"]
    assert ww["val_negative_stream_hours"] > before["val_negative_stream_hours"]
    cv = ww["conversation"]
    assert set(cv["streams"]) == {"fillets-ng:cs", "fillets-ng:en"}
    assert cv["hours"] == pytest.approx(sum(s["seconds"] for s in c.meta["conversation"]["test"]["streams"]) / 3600)
    net, ckd = load_checkpoint(ck)
    from hostside.data.features import FrontEnd
    from hostside.evaluate import _stream_audio
    fe = FrontEnd.from_dict(ckd["frontend"])
    det = Detector(ww["threshold"], ww["smoothing_windows"], 100.0, ww["refractory_s"])
    n = sum(len(det.triggers(stream_posteriors(net, predict, _stream_audio(c, s["file"], fe.sample_rate), fe, 100.0)))
            for s in c.meta["conversation"]["test"]["streams"])
    assert cv["false_accepts"] == n == sum(s["false_accepts"] for s in cv["streams"].values())
    assert ww["real_speech"]["hours"] == before["real_speech"]["hours"]
    if "det" in ww:
        assert all(p["conversation_fa_per_hour"] * cv["hours"] == pytest.approx(round(p["conversation_fa_per_hour"]
                                                                                      * cv["hours"]))
                   for p in ww["det"]["points"])
    from hostside.report.report import _wakeword_md       # the demo's report.md says it, and only when measured
    md = "\n".join(_wakeword_md(api._wakeword_summary(ev)))
    assert f"{cv['false_accepts']} false accepts in {cv['hours']:.2f} h of actors in conversation (cs, en; full band" in md
    assert "actors in conversation" not in "\n".join(_wakeword_md(api._wakeword_summary(ev_before)))
