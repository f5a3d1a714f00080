"""Training on an accelerator: the augmentation runs on the batch's device while every random draw comes from the
CPU generator, so a seed draws the same augmentations on a GPU as on the CPU, and train() runs there end to end.
Runs where torch sees a CUDA device; skipped elsewhere (the CPU path is covered by test_train_eval.py)."""
import numpy as np
import pytest
import torch

from hostside.data.features import preset
from hostside.train import Augmenter, TrainConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here: these checks run on a GPU machine (torch.cuda.is_available())")


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.1, (n, 16000)).astype(np.float32), rng.normal(0, 0.3, (6, 16000)).astype(np.float32)


def test_augmentations_on_the_gpu_are_the_cpus_draws():
    fe = preset("logmel40")
    audio, bank = _data()
    cfg = TrainConfig(band_prob=0.5, vtlp=(0.8, 1.25))
    g_cpu, g_gpu = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    cpu = Augmenter(fe, cfg, bank, g_cpu)(torch.from_numpy(audio))
    gpu = Augmenter(fe, cfg, bank, g_gpu)(torch.from_numpy(audio).cuda())
    assert gpu.device.type == "cuda"
    assert torch.equal(g_cpu.get_state(), g_gpu.get_state())            # the same draws, in the same number
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-3, rtol=1e-4)          # float32 FFTs differ in the last bits only
    tie = torch.tensor([*range(8), 0, 1])
    a = Augmenter(fe, cfg, bank, torch.Generator().manual_seed(2))(torch.from_numpy(audio[:10]), tie=tie)
    b = Augmenter(fe, cfg, bank, torch.Generator().manual_seed(2))(torch.from_numpy(audio[:10]).cuda(), tie=tie)
    assert torch.allclose(b.cpu(), a, atol=1e-3, rtol=1e-4)


def test_train_runs_on_the_gpu_and_returns_a_cpu_model():
    from hostside.models import build_model
    from hostside.train import train
    fe = preset("logmel40")
    audio, bank = _data(64)
    y = np.arange(64) % 3
    xv = np.random.default_rng(3).normal(0, 1, (12, *fe.shape)).astype(np.float32)
    torch.manual_seed(0)
    net = build_model("dscnn-logmel", fe.shape, 3)
    net, info = train(net, fe, audio, y, xv, np.arange(12) % 3, TrainConfig(epochs=2, vtlp=(0.8, 1.25)),
                      noise_bank=bank, progress=False)
    assert info["device"] == "cuda" and len(info["history"]) == 2
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert np.isfinite(info["history"][-1]["loss"])


def test_the_phoneme_loss_trains_on_the_gpu_and_keeps_its_head_on_the_cpu():
    """`pqlr train --phoneme-ctc`'s head and CTC loss on the batch's device (targets there, lengths on the CPU);
    written in session 30 without a GPU lent: the CPU path is tests/test_phoneme_ctc.py's."""
    from hostside.models import build_model
    from hostside.train import train
    fe = preset("logmel40")
    audio, bank = _data(64)
    y = np.arange(64) % 3
    targets = [[1, 2, 3, 4, 5, 6] if k == 0 else [] if k == 2 else None for k in y]
    xv = np.random.default_rng(3).normal(0, 1, (12, *fe.shape)).astype(np.float32)
    torch.manual_seed(0)
    net = build_model("dscnn-logmel", fe.shape, 3)
    net, info = train(net, fe, audio, y, xv, np.arange(12) % 3, TrainConfig(epochs=2, ctc_weight=0.3, ema=0.9),
                      noise_bank=bank, progress=False, phonemes=(targets, 6))
    assert info["device"] == "cuda" and np.isfinite(info["history"][-1]["ctc_loss"])
    assert all(v.device.type == "cpu" for v in info["phoneme_head"].values())
