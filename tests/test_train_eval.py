"""Training determinism, model registry, and the evaluation protocol."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hostside import api
from hostside.data.features import PRESETS, features
from hostside.errors import PqlrError
from hostside.evaluate import count_triggers, stream_features
from hostside.models import REGISTRY, build_model, param_count


def test_registry_sizes():
    assert param_count(build_model("microbert-2l", (49, 40), 3)) <= 500_000
    assert param_count(build_model("dscnn-wide", (49, 10), 3)) >= 1_000_000
    assert param_count(build_model("tinybert-6l", (49, 40), 3)) >= 1_000_000
    m = build_model("dscnn-mlperf", (49, 10), 12)
    assert m.cfg.channels == 64 and m.cfg.blocks == 4 and m.cfg.stem_kernel == (10, 4)
    for name in REGISTRY:
        net = build_model(name, (49, 10), 12).eval()
        assert net(torch.zeros(2, 49, 10)).shape == (2, 12)
    with pytest.raises(PqlrError, match="unknown model"):
        build_model("resnet", (49, 10), 3)


def test_band_mean_input_norm_ignores_a_per_band_offset_and_is_refused_by_export():
    """dscnn --set input_norm=band_mean (attempts.md §28): each band minus its mean over the window, so a constant
    offset per band (a channel's or a voice's spectral tilt in log-mel) does not reach the network; the integer
    path has no kernel for it, so lowering refuses it with the way out instead of exporting a different model."""
    from hostside.models.ops import float_ops
    torch.manual_seed(0)
    x = torch.randn(8, 49, 40)
    tilt = torch.linspace(-3, 3, 40)[None, None, :]

    def calibrated(**options):                # BatchNorm statistics of x, so the output depends on the input
        net = build_model("dscnn-logmel", (49, 40), 3, **options)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        net.train()(x)
        return net.eval()
    net, plain = calibrated(input_norm="band_mean"), calibrated()
    assert torch.allclose(net(x), net(x + tilt), atol=1e-5)
    assert (plain(x) - plain(x + tilt)).abs().max() > 0.1
    with pytest.raises(PqlrError, match="input_norm='band_mean' has no integer kernel"):
        float_ops(net)
    assert float_ops(plain)
    with pytest.raises(ValueError, match="none or band_mean"):
        build_model("dscnn-logmel", (49, 40), 3, input_norm="pcen")


def test_stream_windows_equal_per_window_features():
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16000 * 3)
    for fe in PRESETS.values():
        win = stream_features(audio, fe, 100.0)
        assert win.shape[0] == 1 + (len(audio) - 16000) // 1600
        for k in (0, 7, len(win) - 1):
            assert np.allclose(win[k], features(audio[k * 1600: k * 1600 + 16000], fe), atol=1e-4)


def test_trigger_counting():
    post = np.zeros(100)
    post[10:13] = 0.95           # one event spanning three windows
    post[50] = 0.95              # a lone spike, smoothed away with smooth=3
    post[70:80] = 0.99           # a long event: one trigger per refractory period (1 s = 10 windows)
    assert count_triggers(post, 0.9, 1, 100.0, 1.0) == 3
    assert count_triggers(post, 0.9, 3, 100.0, 1.0) == 2
    assert count_triggers(post, 0.999, 1, 100.0, 1.0) == 0


def test_training_is_deterministic(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    a = api.train(corpus, tmp_path / "a.pt", epochs=1, seed=7, channels=8, blocks=1, progress=False)
    b = api.train(corpus, tmp_path / "b.pt", epochs=1, seed=7, channels=8, blocks=1, progress=False)
    sa = torch.load(tmp_path / "a.pt", weights_only=False)["state_dict"]
    sb = torch.load(tmp_path / "b.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["metrics"] == b["metrics"]


def test_training_is_deterministic_across_processes(trained_pipeline, tmp_path):
    """The same seed in a fresh interpreter gives the same weights: within one process cached decodes hid that sox
    dithered two of the training noise samples differently in every process."""
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=1, seed=7, channels=8, blocks=1, progress=False)
    api.train(corpus, tmp_path / "here.pt", **opts)
    code = f"from hostside import api; api.train({str(corpus)!r}, {str(tmp_path / 'there.pt')!r}, **{opts!r})"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=Path(api.__file__).parents[1])
    sa = torch.load(tmp_path / "here.pt", weights_only=False)["state_dict"]
    sb = torch.load(tmp_path / "there.pt", weights_only=False)["state_dict"]
    assert [k for k in sa if not torch.equal(sa[k], sb[k])] == []


def test_vtlp_is_recorded_changes_training_and_is_checked(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=1, seed=7, channels=8, blocks=1, progress=False)
    api.train(corpus, tmp_path / "a.pt", **opts)
    api.train(corpus, tmp_path / "v.pt", vtlp=(0.9, 1.1), **opts)
    a, v = (torch.load(tmp_path / f, weights_only=False) for f in ("a.pt", "v.pt"))
    assert tuple(a["train_config"]["vtlp"]) == (1.0, 1.0) and tuple(v["train_config"]["vtlp"]) == (0.9, 1.1)
    assert not all(torch.equal(a["state_dict"][k], v["state_dict"][k]) for k in a["state_dict"])
    with pytest.raises(PqlrError, match="vtlp"):
        api.train(corpus, tmp_path / "x.pt", vtlp=(1.1, 0.9), **opts)


def test_augmentation_settings_are_recorded_change_training_and_are_checked(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=1, seed=7, channels=8, blocks=1, progress=False)
    api.train(corpus, tmp_path / "a.pt", **opts)
    api.train(corpus, tmp_path / "q.pt", augment={"noise_prob": 0, "snr_db": (10, 30)}, **opts)
    a, q = (torch.load(tmp_path / f, weights_only=False) for f in ("a.pt", "q.pt"))
    assert a["train_config"]["noise_prob"] == 0.8 and q["train_config"]["noise_prob"] == 0.0
    assert tuple(q["train_config"]["snr_db"]) == (10.0, 30.0)
    assert not all(torch.equal(a["state_dict"][k], q["state_dict"][k]) for k in a["state_dict"])
    for bad, match in (({"noise": 0.1}, "known: time_shift_ms"), ({"noise_prob": 1.5}, "0..1"),
                       ({"snr_db": 10}, "lo,hi"), ({"snr_db": (30, 10)}, "lo must not"),
                       ({"time_masks": 1.5}, "whole number"), ({"time_masks": -1}, ">= 0"),
                       ({"band_prob": 1.5}, "0..1"), ({"band_hz": (4000, 3400)}, "lo must not"),
                       ({"band_hz": (0, 3400)}, "0 < lo"), ({"band_prob": 0.5, "band_hz": (3400, 9000)}, "Nyquist")):
        with pytest.raises(PqlrError, match=match):
            api.train(corpus, tmp_path / "x.pt", augment=bad, **opts)


def test_ema_weights_are_what_validation_judges_and_the_checkpoint_keeps(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=2, seed=7, channels=8, blocks=1, progress=False)
    api.train(corpus, tmp_path / "a.pt", **opts)
    with pytest.warns(UserWarning, match="untrained weights"):          # 0.9 over a handful of steps
        api.train(corpus, tmp_path / "e.pt", ema=0.9, **opts)
    a, e = (torch.load(tmp_path / f, weights_only=False) for f in ("a.pt", "e.pt"))
    assert a["train_config"]["ema"] == 0.0 and e["train_config"]["ema"] == 0.9
    assert not all(torch.equal(a["state_dict"][k], e["state_dict"][k]) for k in a["state_dict"])
    for c in (a, e):        # the saved weights score what selection saw at the best epoch
        assert c["metrics"]["val_acc"] == pytest.approx(c["best_val_acc"], abs=1e-9)
        assert c["best_val_acc"] == max(h["val_acc"] for h in c["history"])
    for bad in (1.0, -0.1):
        with pytest.raises(PqlrError, match="ema"):
            api.train(corpus, tmp_path / "x.pt", ema=bad, **opts)
    assert "untrained weights" in e["ema_warning"] and "ema_warning" not in a


def test_an_average_slower_than_the_training_is_named():
    """--ema 0.999 over the demo corpus's 1,843 steps kept 16 % of the untrained weights and predicted one class
    (attempts.md §40): training warns, saying which decay would do."""
    from hostside.train import ema_too_slow
    msg = ema_too_slow(0.999, 1843)
    assert "16 %" in msg and "0.9973" in msg and "1,843" in msg
    assert "at least 50 steps" in ema_too_slow(0.9, 4)                  # no decay fits 4 steps
    assert ema_too_slow(0.999, 9000) is None and ema_too_slow(0.0, 10) is None and ema_too_slow(0.995, 1843) is None


def test_augmenter_without_noise_shift_gain_or_masks_is_the_front_end():
    from hostside.data.features import TorchFrontEnd, preset
    from hostside.train import Augmenter, TrainConfig, augment_config
    fe = preset("logmel40")
    audio = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, (3, fe.sample_rate)).astype(np.float32))
    bank = np.random.default_rng(2).normal(0, 0.3, (4, fe.sample_rate))
    off = augment_config({"noise_prob": 0, "time_shift_ms": 0, "gain_db": (0, 0), "time_masks": 0, "freq_masks": 0})
    plain = TorchFrontEnd(fe)(audio, warp=None)
    got = Augmenter(fe, TrainConfig(**off), bank, torch.Generator().manual_seed(0))(audio)
    assert torch.allclose(got, plain, atol=1e-5)
    noisy = Augmenter(fe, TrainConfig(**{**off, "noise_prob": 1.0}), bank, torch.Generator().manual_seed(0))(audio)
    assert not torch.allclose(noisy, plain, atol=1e-2)


def test_telephone_band_augmentation_empties_the_bands_above_its_edge_and_only_where_drawn():
    """band_prob: an example heard through the channel keeps its bands below the edge and loses those above it; at
    band_prob 0 nothing is drawn, so runs recorded before the setting existed keep their random streams."""
    from hostside.data.features import mel_filterbank, preset
    from hostside.train import Augmenter, TrainConfig, augment_config
    fe = preset("logmel40")
    audio = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, (4, fe.sample_rate)).astype(np.float32))
    off = augment_config({"noise_prob": 0, "time_shift_ms": 0, "gain_db": (0, 0), "time_masks": 0, "freq_masks": 0})
    plain = Augmenter(fe, TrainConfig(**off), None, torch.Generator().manual_seed(0))(audio)
    gen = torch.Generator().manual_seed(0)
    band = Augmenter(fe, TrainConfig(**off, band_prob=1.0, band_hz=(3400.0, 4000.0)), None, gen)(audio)
    fb = mel_filterbank(fe)
    freqs = np.arange(fb.shape[1]) * fe.sample_rate / fe.n_fft
    low = [m for m in range(fe.n_mels) if freqs[fb[m] > 0].max() < 3000]
    high = [m for m in range(fe.n_mels) if freqs[fb[m] > 0].min() > 4500]
    assert low and high
    assert torch.allclose(band[:, :, low], plain[:, :, low], atol=0.1)     # below the edge: as it was
    assert (plain[:, :, high] - band[:, :, high]).mean() > 5.0             # above it: emptied (log energy, nepers)
    half = Augmenter(fe, TrainConfig(**off, band_prob=0.5), None, torch.Generator().manual_seed(3))(audio)
    cut = [(plain[i, :, high] - half[i, :, high]).mean() > 5.0 for i in range(len(audio))]
    untouched = [torch.allclose(half[i], plain[i], atol=1e-4) for i in range(len(audio))]
    assert all(c != u for c, u in zip(cut, untouched))                     # each example either cut or untouched
    assert any(cut) and not all(cut)
    g, ref = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    Augmenter(fe, TrainConfig(**off, band_hz=(3000.0, 3500.0)), None, g)(audio)
    torch.rand(len(audio), generator=ref)          # with everything else off, the gain's draw is the only one
    assert torch.equal(g.get_state(), ref.get_state())                     # band off: nothing drawn for it


def test_transformer_trains_and_evaluates(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    api.train(corpus, tmp_path / "t.pt", model="microbert-2l", features="mfcc10", epochs=1, progress=False,
              dim=32, layers=1, heads=2, mlp_dim=32)
    r = api.evaluate(tmp_path / "t.pt", corpus, tmp_path / "ev")
    assert "test" in r["splits"] or "val" in r["splits"]


def test_eval_reports_streaming_metrics(trained_pipeline, tmp_path):
    r = api.evaluate(trained_pipeline["root"] / "m.pt", trained_pipeline["corpus"], tmp_path / "ev")
    assert set(r["splits"]) >= {"train", "val"}
    for s in r["splits"].values():
        m = np.array(s["confusion"])
        assert m.sum() == s["n"] and np.trace(m) == round(s["accuracy"] * s["n"])
    ww = r["wakeword"]
    assert ww["positive_class"] == "hey_kimi" and ww["stride_ms"] == 100.0
    assert ww["smoothing_windows"] == 5 and "smoothing fixed at 5 windows" in ww["operating_point"]["chosen_on"]
    assert ww["stream_hours"] == pytest.approx(20 / 3600)
    assert ww["false_accepts_per_hour"] == ww["false_accepts"] / ww["stream_hours"]
    if "det" in ww:
        assert (tmp_path / "ev" / "det.png").is_file()
        frr = [p["frr"] for p in ww["det"]["points"]]
        assert frr == sorted(frr)                 # FRR grows with the threshold
    assert (tmp_path / "ev" / "eval.json").is_file()


def test_cli_train_model_option_error(trained_pipeline, tmp_path):
    p = subprocess.run([sys.executable, "-m", "hostside.cli", "train", "--corpus", str(trained_pipeline["corpus"]),
                        "--model", "nope", "--out", str(tmp_path / "x.pt")], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown model 'nope'" in p.stderr and "Traceback" not in p.stderr


def test_nhwc_runs_channels_last_keeps_the_values_and_gives_the_layout_back():
    from hostside.train import nhwc
    torch.manual_seed(0)
    net = build_model("dscnn-logmel", PRESETS["logmel40"].shape, 3).eval()
    x = torch.randn(4, *PRESETS["logmel40"].shape)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    strides = {k: v.stride() for k, v in net.state_dict().items()}
    seen = []
    net.body.register_forward_hook(lambda m, i, o: seen.append(o.is_contiguous(memory_format=torch.channels_last)
                                                               and not o.is_contiguous()))
    with torch.no_grad():
        ref = net(x)
        with nhwc(net):
            with nhwc(net):            # nested: the inner one leaves the outer layout alone
                pass
            out = net(x)
    assert seen == [False, True]
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert {k: v.stride() for k, v in net.state_dict().items()} == strides
    assert all(p.is_contiguous() for p in net.parameters())


def test_eval_rule_tail_from_the_cli_is_stricter_than_the_count(trained_pipeline, tmp_path):
    """`pqlr eval --rule tail` chooses by the count and the tail estimate; the default is the count, and both
    record the estimate at the chosen point."""
    import json

    from hostside import cli
    args = ["eval", "--checkpoint", str(trained_pipeline["root"] / "m.pt"), "--corpus", str(trained_pipeline["corpus"])]
    assert cli.main(args + ["--out", str(tmp_path / "count")]) == 0
    assert cli.main(args + ["--out", str(tmp_path / "tail"), "--rule", "tail"]) == 0
    count, tail = (json.loads((tmp_path / d / "eval.json").read_text())["wakeword"]["operating_point"]
                   for d in ("count", "tail"))
    assert count["rule"] == "count" and tail["rule"] == "tail" and "tail estimate" in tail["chosen_on"]
    assert all(isinstance(op["val_estimated_fa_per_hour"], float) for op in (count, tail))
    if tail["val_met"]:
        assert tail["val_estimated_fa_per_hour"] <= 1.0 and tail["val_false_accepts"] <= tail["val_allowed_false_accepts"]
    if count["val_met"]:              # the tail rule's choices are a subset of the count rule's
        assert tail["val_frr"] >= count["val_frr"]
