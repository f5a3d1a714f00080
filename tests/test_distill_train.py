"""`pqlr train --teacher`: distilling a student from a teacher while it trains from scratch."""
from __future__ import annotations

import json

import pytest
import torch

from hostside import api
from hostside.compress.distill import TeacherEnsemble, kd_loss
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


def test_an_ensemble_teaches_the_mean_of_its_members_softened_posteriors():
    torch.manual_seed(1)
    x = torch.randn(5, 4)
    members = [torch.nn.Linear(4, 3) for _ in range(3)]
    for T in (1.0, 6.0):
        z = TeacherEnsemble(members, T)(x)
        want = torch.stack([torch.softmax(m(x) / T, 1) for m in members]).mean(0)
        assert torch.allclose(torch.softmax(z / T, 1), want, atol=1e-6)
        # not the mean of the logits (what a member-blind average would give): the two differ here
        assert not torch.allclose(want, torch.softmax(torch.stack([m(x) for m in members]).mean(0) / T, 1), atol=1e-3)
    one = TeacherEnsemble(members[:1], 6.0)(x)          # one member: its own soft labels
    assert torch.allclose(torch.softmax(one / 6.0, 1), torch.softmax(members[0](x) / 6.0, 1), atol=1e-6)
    with pytest.raises(ValueError):
        TeacherEnsemble([], 1.0)


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
    assert (d["alpha"], d["temperature"]) == (0.5, 3.0) and d["teacher"] == str(trained_pipeline["root"] / "m.pt")
    rc = main(["train", "--corpus", str(corpus), "--out", str(tmp_path / "e.pt"), "--epochs", "1", "--set",
               "channels=8", "--set", "blocks=1", "--teacher", str(trained_pipeline["root"] / "m.pt"),
               "--teacher", str(tmp_path / "s.pt")])
    assert rc == 0
    d = torch.load(tmp_path / "e.pt", weights_only=False)["distillation"]
    assert d["teacher"] == [str(trained_pipeline["root"] / "m.pt"), str(tmp_path / "s.pt")]


def test_a_student_learns_from_an_ensemble_of_teachers_and_records_each(trained_pipeline, tmp_path):
    """Two teachers that each say one class for everything: the ensemble's soft label is half each, so a student
    taught only by it says one of the two on every val clip, never a third class; the checkpoint names both."""
    corpus = trained_pipeline["corpus"]
    classes = api.load_features(corpus, "val")[0].classes
    a, b = classes.index("silence"), classes.index("unknown")
    ta = _teacher_saying(tmp_path / "ta.pt", trained_pipeline["root"] / "m.pt", a)
    tb = _teacher_saying(tmp_path / "tb.pt", trained_pipeline["root"] / "m.pt", b)
    opts = dict(epochs=6, lr=0.05, seed=5, channels=8, blocks=1, progress=False)
    api.train(corpus, tmp_path / "kd2.pt", teacher=[ta, tb], kd_alpha=1.0, kd_temperature=1.0, **opts)
    from hostside.train import load_checkpoint, predict
    net, ck = load_checkpoint(tmp_path / "kd2.pt")
    _, xv, _ = api.load_features(corpus, "val")
    p = predict(net, xv)
    assert set(p.argmax(1).tolist()) <= {a, b}
    assert abs(float(p[:, a].mean()) - 0.5) < 0.15 and abs(float(p[:, b].mean()) - 0.5) < 0.15, p.mean(0)
    d = ck["distillation"]
    assert d["teacher"] == [str(ta), str(tb)] and d["ensemble"] == "mean of softened posteriors" and d["teacher_params"] > 0
    # one member that does not fit refuses the whole ensemble
    with pytest.raises(PqlrError, match="no checkpoint"):
        api.train(corpus, tmp_path / "x.pt", teacher=[ta, tmp_path / "missing.pt"], **opts)


def test_blended_input_distillation_matches_the_teacher_on_mixes_of_two_clips():
    """train's kd_mix term (function matching): KL(teacher ‖ student) on λ·x_i + (1 − λ)·x_(i+1), λ drawn per example
    from the generator; zero when the student is the teacher, and its gradient pulls the student's posteriors there
    toward the teacher's."""
    from hostside.train import TrainConfig, mixed_kd_loss, train
    torch.manual_seed(2)
    x = torch.randn(4, 1, 3, 5)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(15, 3))
    student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(15, 3))
    assert float(mixed_kd_loss(teacher, teacher, x, torch.Generator().manual_seed(0)).detach()) == pytest.approx(0.0, abs=1e-6)
    loss = mixed_kd_loss(student, teacher, x, torch.Generator().manual_seed(0))
    lam = torch.rand(4, generator=torch.Generator().manual_seed(0)).view(-1, 1, 1, 1)
    xm = lam * x + (1 - lam) * torch.cat([x[3:], x[:3]])           # each example with the one before it, cyclically
    p_t, p_s = torch.softmax(teacher(xm), 1), torch.softmax(student(xm), 1)
    want = (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5) and float(loss.detach()) > 0
    loss.backward()
    assert student[1].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())     # the teacher is read, never trained
    with pytest.raises(PqlrError, match="needs a teacher"):
        train(student, None, torch.zeros(2, 16000).numpy(), torch.zeros(2, dtype=torch.long).numpy(), x.numpy(),
              torch.zeros(4, dtype=torch.long).numpy(), TrainConfig(epochs=1, kd_mix=1.0), progress=False)
    with pytest.raises(PqlrError, match="blended-input"):
        TrainConfig(kd_mix=-1)


def test_a_recipe_distils_on_blended_inputs_when_asked(trained_pipeline, monkeypatch):
    """distill.mix: checked, off by default, and handed to every fine-tuning's training loop — only when the recipe
    names a teacher (without one there is nothing to match)."""
    import hostside.train as T
    from hostside.compress.pipeline import Pipeline
    from hostside.compress.recipe import from_dict
    base = {"student": "s.pt", "corpus": "c", "teacher": "t.pt", "stages": [{"name": "quantize"}]}
    assert from_dict(base).distill["mix"] == 0.0
    assert from_dict(base | {"distill": {"mix": 1}}).distill["mix"] == 1.0
    with pytest.raises(PqlrError, match="distill.mix"):
        from_dict(base | {"distill": {"mix": -0.5}})
    ck = str(trained_pipeline["root"] / "m.pt")
    seen = []
    monkeypatch.setattr(T, "train", lambda model, fe, audio, y, xv, yv, cfg, **k: seen.append(cfg.kd_mix) or (model, {}))
    for teacher in (ck, None):
        pipe = Pipeline(from_dict(base | {"student": ck, "teacher": teacher, "corpus": str(trained_pipeline["corpus"]),
                                          "distill": {"mix": 1}}), progress=False, log=lambda *a: None)
        pipe.fit(pipe.student, 1, 1e-4)
    assert seen == [1.0, 0.0]


def test_a_recipe_averages_each_fine_tunings_weights_when_asked(trained_pipeline, monkeypatch):
    """ema: checked, off by default, handed to every fine-tuning's training loop as its weight-average decay."""
    import hostside.train as T
    from hostside.compress.pipeline import Pipeline
    from hostside.compress.recipe import from_dict
    base = {"student": "s.pt", "corpus": "c", "stages": [{"name": "quantize"}]}
    assert from_dict(base).ema == 0.0 and from_dict(base | {"ema": 0.995}).ema == 0.995
    for bad in (1.0, -0.1, True, "0.9"):
        with pytest.raises(PqlrError, match="recipe: ema"):
            from_dict(base | {"ema": bad})
    ck = str(trained_pipeline["root"] / "m.pt")
    seen = []
    monkeypatch.setattr(T, "train", lambda model, fe, audio, y, xv, yv, cfg, **k: seen.append(cfg.ema) or (model, {}))
    for ema in (0.99, 0.0):
        pipe = Pipeline(from_dict(base | {"student": ck, "corpus": str(trained_pipeline["corpus"]), "ema": ema}),
                        progress=False, log=lambda *a: None)
        pipe.fit(pipe.student, 1, 1e-4)
    assert seen == [0.99, 0.0]
