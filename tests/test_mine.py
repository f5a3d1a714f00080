"""Hard-negative mining (hostside/mine.py): the peaks it takes, the speech it may read, and the fine-tuned
checkpoint it writes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hostside import api
from hostside import mine as M
from hostside.data.realspeech import dialogue_sources
from hostside.errors import PqlrError

needs_dialogue = pytest.mark.skipif(not dialogue_sources(), reason="needs Fish Fillets NG's dialogue (`make deps`)")


def test_peaks_are_separate_and_highest_first():
    post = np.array([0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.95, 0.1, 0.6])
    p = M.peaks(post, gap=2)
    assert list(p) == [6, 1, 8, 4]                      # 0.8 (next to 0.9) and 0.7 (next to 0.95) suppressed
    assert all(abs(int(a) - int(b)) >= 2 for i, a in enumerate(p) for b in p[i + 1:])
    assert list(M.peaks(post, gap=1)) == list(np.argsort(-post, kind="stable"))


@needs_dialogue
def test_only_the_training_levels_are_read():
    from hostside.data.synth import SynthConfig, dialogue_splits
    recs = M.dialogue_recordings(0, max_hours=0.02)
    levels = dialogue_splits(SynthConfig(seed=0), dialogue_sources())
    assert recs and all(levels[name.split("/")[1]] == "train" for name, _ in recs)
    assert {name.split("/")[0] for name, _ in recs} == {s.voice for s in dialogue_sources()}   # every language
    assert sum(len(x) for _, x in recs) / 16000 <= 0.02 * 3600 + 60 * len(dialogue_sources())  # the cap (+ a file)
    assert "val" in set(levels.values())               # the validation levels exist and are never read


@needs_dialogue
def test_mined_windows_are_what_the_model_fires_on(trained_pipeline):
    from hostside.data.features import FrontEnd, features
    from hostside.evaluate import stream_posteriors
    from hostside.train import load_checkpoint, predict
    net, ck = load_checkpoint(trained_pipeline["root"] / "m.pt")
    fe = FrontEnd.from_dict(ck["frontend"])
    recs = M.dialogue_recordings(0, max_hours=0.01)
    found = M.mine(net, fe, recs, negatives=7, floor=0.0, progress=False)
    assert found.audio.shape == (7, fe.clip_samples) and found.audio.dtype == np.int16
    assert list(found.scores) == sorted(found.scores, reverse=True) and found.above_floor >= 7
    # each mined window, scored again on its own, is the posterior it was mined at
    again = predict(net, np.stack([features(a.astype(np.float32) / 32768.0, fe) for a in found.audio]))[:, 0]
    assert np.allclose(again, found.scores, atol=0.02)
    post = np.concatenate([stream_posteriors(net, predict, x, fe, 100.0) for _, x in recs])
    assert found.windows == len(post) and found.scores[0] == pytest.approx(post.max(), abs=1e-6)
    high = M.mine(net, fe, recs, negatives=1000, floor=float(np.sort(post)[-3]), progress=False)
    assert 1 <= len(high.audio) <= 3                    # the floor holds


@needs_dialogue
def test_finetune_writes_a_checkpoint_that_records_the_mining(trained_pipeline, tmp_path):
    root = trained_pipeline["root"]
    r = api.mine(root / "m.pt", trained_pipeline["corpus"], tmp_path / "mined.pt", negatives=16, floor=0.0,
                 epochs=1, max_hours=0.01, progress=False)
    ck = torch.load(tmp_path / "mined.pt", map_location="cpu", weights_only=False)
    m = ck["mined"]
    assert m["negatives"] == 16 and m["floor"] == 0.0 and m["hours_searched"] <= 0.05 and sum(m["by_source"].values()) == 16
    assert ck["finetune_of"] == str(root / "m.pt") and ck["train_config"]["epochs"] == 1
    assert ck["classes"] == torch.load(root / "m.pt", map_location="cpu", weights_only=False)["classes"]
    before = torch.load(root / "m.pt", map_location="cpu", weights_only=False)["state_dict"]
    assert any(not torch.equal(before[k], v) for k, v in ck["state_dict"].items())       # it was trained
    assert r["metrics"]["val_acc"] == pytest.approx(ck["metrics"]["val_acc"])
    ev = api.evaluate(tmp_path / "mined.pt", trained_pipeline["corpus"])                    # a usable checkpoint
    assert "wakeword" in ev
    ctl = api.mine(root / "m.pt", trained_pipeline["corpus"], tmp_path / "control.pt", negatives=0, epochs=1,
                   progress=False)                                  # the control: the same fine-tuning, nothing mined
    assert ctl["mined"]["negatives"] == 0 and ctl["mined"]["hours_searched"] == 0 and ctl["mined"]["by_source"] == {}
    for bad in (dict(negatives=-1), dict(floor=1.0), dict(epochs=0), dict(max_hours=0.0), dict(repeat=0)):
        with pytest.raises(PqlrError):
            api.mine(root / "m.pt", trained_pipeline["corpus"], tmp_path / "x.pt", **bad)


@pytest.mark.parametrize("script", ["mine_attempt.py", "dialogue_peaks.py"])
def test_the_benchmark_scripts_start(script):
    import subprocess
    import sys
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "quality" / script
    p = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "usage" in p.stdout, p.stderr


def test_a_student_trained_with_the_pair_loss_is_fine_tuned_with_it(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    api.train(corpus, tmp_path / "p.pt", epochs=1, seed=0, channels=8, blocks=1, pair_loss=1.0, progress=False)
    api.mine(tmp_path / "p.pt", corpus, tmp_path / "ft.pt", negatives=0, epochs=1, progress=False)   # the control
    ck = torch.load(tmp_path / "ft.pt", map_location="cpu", weights_only=False)
    assert ck["train_config"]["pair_weight"] == 1.0 and ck["train_config"]["epochs"] == 1
