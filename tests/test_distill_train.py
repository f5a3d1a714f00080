"""`pqlr train --teacher`: distilling a student from a teacher while it trains from scratch."""
from __future__ import annotations

import json

import pytest
import torch

from hostside import api
from hostside.compress.distill import kd_loss
from hostside.errors import PqlrError


def test_kd_loss_is_the_teachers_divergence_plus_a_smoothed_hard_label_term():
    torch.manual_seed(0)
    z_s, z_t = torch.randn(6, 3, requires_grad=True), torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    assert float(kd_loss(z_t.clone(), z_t, y, 2.0, alpha=1.0)) == pytest.approx(0.0, abs=1e-6)   # nothing to learn
    ce = torch.nn.functional.cross_entropy(z_s, y, label_smoothing=0.1)
    assert float(kd_loss(z_s, z_t, y, 2.0, alpha=0.0, label_smoothing=0.1).detach()) == pytest.approx(float(ce.detach()),
                                                                                                   rel=1e-6)
    kd_loss(z_s, z_t, y, 2.0, alpha=1.0).backward()
    p_s, p_t = torch.softmax(z_s / 2.0, 1), torch.softmax(z_t / 2.0, 1)
    # d/dz_s of T²·KL(p_t ‖ p_s) is T·(p_s − p_t) per example, averaged over the batch
    assert torch.allclose(z_s.grad, 2.0 * (p_s - p_t).detach() / len(y), atol=1e-6)


def _teacher_saying(path, src, klass: int):
    """A copy of checkpoint `src` whose output is a fixed large logit for one class, whatever it hears."""
    ck = torch.load(src, weights_only=False)
    sd = ck["state_dict"]
    sd["fc.weight"] = torch.zeros_like(sd["fc.weight"])
    sd["fc.bias"] = torch.full_like(sd["fc.bias"], -8.0)
    sd["fc.bias"][klass] = 8.0
    torch.save(ck, path)
    return path


def test_a_student_learns_what_its_teacher_says_and_records_it(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=6, lr=0.05, seed=5, channels=8, blocks=1, progress=False)   # few steps: a high rate
    silence = api.load_features(corpus, "val")[0].classes.index("silence")
    teacher = _teacher_saying(tmp_path / "t.pt", trained_pipeline["root"] / "m.pt", silence)
    api.train(corpus, tmp_path / "plain.pt", **opts)
    api.train(corpus, tmp_path / "kd.pt", teacher=teacher, kd_alpha=1.0, kd_temperature=1.0, **opts)
    _, xv, yv = api.load_features(corpus, "val")
    share = float((yv == silence).mean())
    kd, plain = (torch.load(tmp_path / f"{n}.pt", weights_only=False)["history"] for n in ("kd", "plain"))
    # taught only by a teacher that always says silence, the student ends up saying silence on every val clip
    # (validation then keeps an earlier epoch: selection judges the hard labels); on its own it does not
    assert kd[-1]["val_acc"] == pytest.approx(share) and kd[-1]["loss"] < 0.3, kd
    assert plain[-1]["val_acc"] != pytest.approx(share), plain
    ck = torch.load(tmp_path / "kd.pt", weights_only=False)
    assert ck["distillation"]["teacher"] == str(teacher) and ck["distillation"]["alpha"] == 1.0
    assert ck["distillation"]["temperature"] == 1.0 and ck["distillation"]["teacher_params"] > 0
    assert "distillation" not in torch.load(tmp_path / "plain.pt", weights_only=False)


def test_a_teacher_that_does_not_fit_the_student_is_refused(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=1, seed=5, channels=8, blocks=1, progress=False)
    good = trained_pipeline["root"] / "m.pt"
    for bad, match in (({"kd_alpha": 1.5}, "kd alpha"), ({"kd_temperature": 0.0}, "kd temperature")):
        with pytest.raises(PqlrError, match=match):
            api.train(corpus, tmp_path / "x.pt", teacher=good, **bad, **opts)
    with pytest.raises(PqlrError, match="other features"):          # trained on log-mel, asked for MFCC
        api.train(corpus, tmp_path / "x.pt", teacher=good, features="mfcc10", **opts)
    with pytest.raises(PqlrError, match="no checkpoint"):
        api.train(corpus, tmp_path / "x.pt", teacher=tmp_path / "missing.pt", **opts)
    # a teacher whose training corpus put this corpus's unseen voices in training: refused, naming them
    manifest = json.loads((corpus / "manifest.json").read_text())
    leaky = tmp_path / "leaky-corpus"
    leaky.mkdir()
    voices = manifest["meta"]["voices"]
    manifest["meta"]["voices"] = {**voices, "train": voices["train"] + voices["unseen"], "unseen": []}
    (leaky / "manifest.json").write_text(json.dumps(manifest))
    ck = torch.load(good, weights_only=False)
    ck["corpus"] = str(leaky)
    torch.save(ck, tmp_path / "leaky.pt")
    with pytest.raises(PqlrError, match="holds out") as e:
        api.train(corpus, tmp_path / "x.pt", teacher=tmp_path / "leaky.pt", **opts)
    assert voices["unseen"][0] in str(e.value)


def test_pqlr_train_takes_a_teacher(trained_pipeline, tmp_path):
    from hostside.cli import main
    corpus = trained_pipeline["corpus"]
    rc = main(["train", "--corpus", str(corpus), "--out", str(tmp_path / "s.pt"), "--epochs", "1", "--set",
               "channels=8", "--set", "blocks=1", "--teacher", str(trained_pipeline["root"] / "m.pt"),
               "--kd-alpha", "0.5", "--kd-temperature", "3"])
    assert rc == 0
    d = torch.load(tmp_path / "s.pt", weights_only=False)["distillation"]
    assert (d["alpha"], d["temperature"]) == (0.5, 3.0)
