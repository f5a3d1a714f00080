"""Each compression pass's invariant, the recipe checks, and the one-liner end to end."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hostside.compress.distill import kd_loss
from hostside.compress.lowrank import expected_error, factorise, plan_ranks, svd_factor
from hostside.models.ops import float_ops, run_float_ops
from hostside.compress.prune import masked_copy, prune, select_channels
from hostside.compress.quant import ActQuant, WeightQuant, build_quantnet
from hostside.compress.recipe import from_dict
from hostside.errors import PqlrError
from hostside.models import build_model
from hostside.reference import run, run_batch


def _random_dscnn(seed, **kw):
    torch.manual_seed(seed)
    m = build_model("dscnn", (15, 9), 4, **({"channels": 10, "blocks": 2, "stem_kernel": (3, 3), "stem_stride": (2, 1)} | kw))
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.data = torch.rand(mod.num_features, generator=g) + 0.05
            mod.bias.data = torch.randn(mod.num_features, generator=g) * 0.2
            mod.running_mean = torch.randn(mod.num_features, generator=g) * 0.1
            mod.running_var = torch.rand(mod.num_features, generator=g) + 0.5
    return m.eval()


@pytest.mark.parametrize("seed,sparsity", [(0, 0.3), (1, 0.5), (2, 0.7), (3, 0.0)])
def test_pruned_network_equals_masked_original(seed, sparsity):
    m = _random_dscnn(seed)
    keep = select_channels(m, sparsity)
    small = prune(m, keep)
    masked = masked_copy(m, keep)
    x = torch.randn(8, 15, 9, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    total = sum(m.cfg.group_widths())
    assert sum(small.cfg.group_widths()) <= total - int(round(sparsity * total)) + 2 * len(keep)
    assert small.stem.weight.shape[0] == len(keep[0])            # physically smaller
    if sparsity > 0:
        assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in m.parameters())


def test_group_cap_keeps_a_share_of_every_layer():
    m = _random_dscnn(7)
    bns = [m.stem_bn] + [mod for mod in m.body if isinstance(mod, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.weight.data.fill_(1.0)
    m.stem_bn.weight.data[:] = 1e-3                      # the whole first group looks unimportant
    list(m.body)[1].weight.data[:] = 1e-3
    starved = select_channels(m, 0.3)
    capped = select_channels(m, 0.3, max_group_sparsity=0.5)
    assert len(starved[0]) == 2 and len(capped[0]) == 5     # 10 channels: at least half survive
    with torch.no_grad():
        x = torch.randn(3, 15, 9)
        assert torch.allclose(prune(m, capped)(x), masked_copy(m, capped)(x), atol=1e-5)


def test_global_threshold_removes_smallest_gammas():
    m = _random_dscnn(4)
    bns = [m.stem_bn] + [mod for mod in m.body if isinstance(mod, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.weight.data.fill_(1.0)
    m.stem_bn.weight.data[:3] = 1e-3
    list(m.body)[1].weight.data[:3] = 1e-3             # the same channels' depthwise BN: the whole group is small
    keep = select_channels(m, 3 / sum(m.cfg.group_widths()))
    assert 0 not in keep[0].tolist() and 1 not in keep[0].tolist() and 2 not in keep[0].tolist()


@pytest.mark.parametrize("rank", [1, 3, 6])
def test_svd_pair_reconstructs_to_expected_error(rank):
    w = torch.randn(12, 9, generator=torch.Generator().manual_seed(rank), dtype=torch.float64)
    B, A, r = svd_factor(w, rank)
    assert r == rank and B.shape == (12, rank) and A.shape == (rank, 9)
    assert abs(torch.linalg.norm(w - B @ A).item() - expected_error(w, rank)) < 1e-9
    B, A, r = svd_factor(w, energy=0.9)
    s = np.linalg.svd(w.numpy(), compute_uv=False)
    cum = np.cumsum(s ** 2) / (s ** 2).sum()
    assert cum[r - 1] >= 0.9 and (r == 1 or cum[r - 2] < 0.9)


def test_lowrank_model_matches_factorised_weights():
    m = _random_dscnn(5, channels=12)
    d = plan_ranks(m, 3, None, None)
    assert d["pw0"]["applied"] and d["fc"]["applied"] is False          # fc is 4×12: rank 3 saves nothing
    f = factorise(m, d)
    x = torch.randn(4, 15, 9)
    with torch.no_grad():
        # with full rank the factorised network is the original one
        full = factorise(m, {k: {"rank": 12 if k != "fc" else 4, "applied": True} for k in d})
        assert torch.allclose(full(x), m(x), atol=1e-4)
        assert f(x).shape == m(x).shape


def test_lsq_weight_step_gradient_equals_formula():
    torch.manual_seed(0)
    wq = WeightQuant(4, 3)
    w = torch.randn(3, 10, dtype=torch.float64) * 0.5
    wq.step.data = torch.tensor([0.05, 0.1, 0.2], dtype=torch.float64)
    wq.fake(w).sum().backward()
    Q = 7
    v = w / wq.step.detach()[:, None]
    inner = torch.where(v.abs() <= Q, torch.round(v) - v, torch.sign(v) * Q)
    g = 1 / np.sqrt(10 * Q)
    assert torch.allclose(wq.step.grad, g * inner.sum(1), atol=1e-12)


def test_lsq_activation_gradients_equal_formula():
    aq = ActQuant(8)
    aq.step.data.fill_(0.1)
    aq.offset.data.fill_(3.0)
    x = torch.linspace(-20, 20, 41, dtype=torch.float64).reshape(1, -1)
    aq.fake(x).sum().backward()
    s, z = 0.1, 3.0
    v = torch.round(x / s) + z
    inside = (v >= -128) & (v <= 127)
    ds = torch.where(inside, torch.round(x / s) - x / s, torch.where(v < -128, -128 - z, 127 - z) * torch.ones_like(x))
    dz = torch.where(inside, torch.zeros_like(x), -torch.ones_like(x) * s)
    g = 1 / np.sqrt(41 * 127)
    assert torch.allclose(aq.step.grad, g * ds.sum(), atol=1e-9)
    assert torch.allclose(aq.offset.grad, g * dz.sum(), atol=1e-9)


def test_distillation_loss_hand_computed():
    z_s = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    z_t = torch.tensor([[0.2, 3.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([1])
    T, a = 6.0, 0.7
    ps = np.exp(np.array([1.0, 2.0, 0.5]) / T); ps /= ps.sum()
    pt = np.exp(np.array([0.2, 3.0, 1.0]) / T); pt /= pt.sum()
    kl = float((pt * np.log(pt / ps)).sum())
    p = np.exp([1.0, 2.0, 0.5]); p /= p.sum()
    want = a * T * T * kl + (1 - a) * -np.log(p[1])
    assert abs(kd_loss(z_s, z_t, y, T, a).item() - want) < 1e-12


def test_bn_folding_preserves_outputs():
    m = _random_dscnn(6)
    x = torch.randn(5, 15, 9)
    with torch.no_grad():
        assert torch.allclose(run_float_ops(float_ops(m), x)[-1].float(), m(x), atol=1e-5)


@pytest.mark.parametrize("seed,wbits,abits", [(0, 8, 8), (1, 4, 8), (2, 4, 4), (3, 8, 4)])
def test_fake_quant_equals_integer_arithmetic(seed, wbits, abits):
    m = _random_dscnn(seed, widths=(7, 5, 9), pw_ranks=(3, 0), fc_rank=2)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, size=(24, 15, 9)).astype(np.float32)
    qn = build_quantnet(float_ops(m), (15, 9), wbits, abits, 8, calib=x[:12])
    # perturb the learned steps/offsets away from calibration, as training would
    with torch.no_grad():
        for L in qn.weighted():
            L.aq.step.mul_(1 + 0.3 * float(rng.random()))
            L.aq.offset.add_(float(rng.integers(-3, 4)))
    g = qn.to_int_graph()
    with torch.no_grad():
        y, _, _ = qn.forward_int(torch.from_numpy(x))
    ref = np.stack([run(g, g.quantize_input(f)) for f in x])
    assert np.array_equal(y.numpy().astype(np.int64), ref.astype(np.int64))
    inner = [L.wbits for L in g.layers if L.weights is not None][1:-1]
    assert set(inner) == {wbits}


@pytest.mark.parametrize("seed,wbits", [(0, 4), (1, 8)])
def test_quantnet_trunk_then_head_is_forward(seed, wbits):
    """Training's phoneme loss reads a QuantNet's trunk and then its head (hostside/train.py): the two halves give
    forward's logits bit for bit, and the same gradients to every weight, step and offset."""
    m = _random_dscnn(seed, widths=(7, 5, 9), fc_rank=2)
    x = torch.from_numpy(np.random.default_rng(seed).normal(0, 2, size=(10, 15, 9)).astype(np.float32))
    qn = build_quantnet(float_ops(m), (15, 9), wbits, 8, 8, calib=x.numpy())
    grads = []
    for split in (False, True):
        qn.zero_grad()
        maps = qn.trunk(x) if split else None
        y = qn.head(maps) if split else qn(x)
        (y * torch.linspace(-1, 1, y.shape[1], dtype=y.dtype)).sum().backward()
        grads.append((y.detach(), [p.grad.clone() if p.grad is not None else None for p in qn.parameters()]))
    assert maps.shape[1] == 9 and maps.dtype == torch.float64
    assert torch.equal(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, rtol=1e-9, atol=1e-12))


def _recipe(**over):
    base = {"student": "s.pt", "corpus": "c", "stages": [{"name": "prune", "sparsity": 0.5}]}
    return from_dict(base | over)


@pytest.mark.parametrize("stages,field", [
    ([{"name": "squeeze"}], "stages[0].name"),
    ([{"name": "quantize", "wbits": 3}], "stages[0].wbits"),
    ([{"name": "quantize", "abits": 16}], "stages[0].abits"),
    ([{"name": "prune", "sparsity": 1.0}], "stages[0].sparsity"),
    ([{"name": "prune", "sparsity": -0.1}], "stages[0].sparsity"),
    ([{"name": "lowrank", "rank": 0}], "stages[0].rank"),
    ([{"name": "lowrank"}], "stages[0]"),
    ([{"name": "prune", "sparsity": 0.5, "colour": 1}], "stages[0].colour"),
])
def test_recipe_errors_name_the_field(stages, field):
    with pytest.raises(PqlrError) as e:
        _recipe(stages=stages)
    assert field in str(e.value)


def test_rank_larger_than_named_layer_fails_before_training(trained_pipeline, tmp_path):
    from hostside.compress.recipe import check_against_model
    from hostside.train import load_checkpoint
    model, _ = load_checkpoint(trained_pipeline["root"] / "m.pt")
    r = _recipe(stages=[{"name": "lowrank", "rank": 64, "layers": ["pw0"]}])
    with pytest.raises(PqlrError, match=r"stages\[0\].*rank 64 is larger"):
        check_against_model(r, model)


def test_pqlr_compress_one_liner(trained_pipeline, tmp_path):
    """The seed's one-liner, as written, on a small corpus (epochs capped to keep the suite fast)."""
    from hostside import api
    corpus = trained_pipeline["corpus"]
    api.train(corpus, tmp_path / "teacher.pt", model="dscnn", channels=24, blocks=2, epochs=1, progress=False)
    out = tmp_path / "micro_kws.bin"
    p = subprocess.run([sys.executable, "-c", "import sys; from hostside.cli import compress_main; sys.exit(compress_main())",
                        "--model", str(trained_pipeline["root"] / "m.pt"), "--dataset", str(corpus), "--sparse", "0.7",
                        "--wbits", "4", "--rank", "16", "--teacher", str(tmp_path / "teacher.pt"), "--output", str(out),
                        "--epochs", "1"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    import json
    r = json.loads(out.with_suffix(".report.json").read_text())
    names = [s["name"] for s in r["stages"]]
    assert names == ["teacher", "student", "prune", "lowrank", "quantize"]
    q = r["stages"][-1]
    assert q["weight_bytes"] < r["stages"][1]["weight_bytes"] / 4
    assert r["export"]["agreement"]["bit_exact_outputs"] == 1.0
    from hostside.artifact import read_model_bin
    art = read_model_bin(out)
    assert {L.wbits for L in art.graph.layers if L.weights is not None} == {4, 8}
    assert out.with_suffix(".report.md").is_file()


def test_a_student_taught_by_itself_is_evaluated_once_and_the_report_times_every_phase(trained_pipeline, tmp_path,
                                                                                        monkeypatch):
    """`--teacher` = the student's own checkpoint (the quality benchmark's self-distilled INT4 student): the teacher row
    is the student's, not a second evaluation of the same network; the report's total covers loading, fine-tuning,
    every evaluation and the export (it once stopped before the export and the final evaluation)."""
    import hostside.evaluate as E
    from hostside.compress.pipeline import run_recipe
    from hostside.compress.recipe import from_dict
    calls = []
    real = E.evaluate
    monkeypatch.setattr(E, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    student = str(trained_pipeline["root"] / "m.pt")
    out = tmp_path / "self.bin"
    r = run_recipe(from_dict({"student": student, "teacher": student, "corpus": str(trained_pipeline["corpus"]),
                              "board": "rv32-virt", "output": str(out), "seed": 0,
                              "stages": [{"name": "quantize", "wbits": 4, "abits": 8, "calib": 20, "epochs": 1}]}),
                   progress=False, log=lambda *a: None)
    assert [s["name"] for s in r["stages"]] == ["teacher", "student", "quantize"]
    assert len(calls) == 2                                  # the student and the quantised student, nothing twice
    teacher, student_row = r["stages"][0], r["stages"][1]
    assert teacher["same_as"] == "student" and {k: v for k, v in teacher.items() if k not in ("name", "same_as")} == \
        {k: v for k, v in student_row.items() if k != "name"}
    t = r["timings_s"]
    assert set(t) == {"load_s", "fit_s", "evaluate_s", "export_s", "total_s"} and min(t.values()) > 0
    assert t["total_s"] >= t["load_s"] + t["fit_s"] + t["evaluate_s"] + t["export_s"] - 1e-6
    md = out.with_suffix(".report.md").read_text()
    assert "| teacher (= student) |" in md and "Time: " in md and "fine-tuning" in md
    # every stage carries its DET curve, read by the same detector as its operating point, and the report compares
    # the stages at equal false accepts (the INT4 student's curve was not recorded before 2026-12-04)
    for row in r["stages"]:
        by_t = {p["threshold"]: p for p in row["det"]}
        assert len(by_t) == len(E.THRESHOLDS) and row["threshold"] in by_t
        at = by_t[row["threshold"]]
        assert at["frr"] == row["false_rejection_rate"]
        assert at["fa_per_hour"] == pytest.approx(row["false_accepts_per_hour"])
        assert row["frr_at_fa_per_hour"] == {str(x): E.frr_at(row["det"], x) for x in E.DET_LIMITS}
    assert "At equal false accepts" in md and "| quantize |" in md.split("At equal false accepts")[1]
    # how often the integer model classifies a held-out clip as the student does, per split: recomputed here from
    # the checkpoint on disk and model.bin (the student's own row has none)
    from hostside.artifact import read_model_bin
    from hostside.data.corpus import load_corpus
    from hostside.data.features import FrontEnd, corpus_features
    from hostside.keyword import GraphPredictor
    from hostside.train import load_checkpoint, predict
    net, ck = load_checkpoint(Path(student))
    corpus = load_corpus(trained_pipeline["corpus"])
    x, _ = corpus_features(corpus, FrontEnd.from_dict(ck["frontend"]))
    splits = np.array([c.split for c in corpus.clips])
    same = predict(net, x).argmax(1) == GraphPredictor(read_model_bin(out).graph, wake_score=False)(None, x).argmax(1)
    want = {s: float(same[splits == s].mean()) for s in ("val", "test", "unseen") if (splits == s).any()}
    assert want and student_row["agreement_with_student"] is None
    assert r["stages"][-1]["agreement_with_student"] == pytest.approx(want)
    assert "Top-1 agreement" in md and "quantize: val" in md
    # and its accuracy gap to the student per split, with the interval for paired proportions; the benchmark's
    # int4_gap.py reads the same pair from disk to the same figures
    _, y = corpus_features(corpus, FrontEnd.from_dict(ck["frontend"]))
    right_s = predict(net, x).argmax(1) == y
    right_q = GraphPredictor(read_model_bin(out).graph, wake_score=False)(None, x).argmax(1) == y
    gap = r["stages"][-1]["gap_to_student"]
    assert set(gap) == set(want) and student_row["gap_to_student"] is None
    for s, g in gap.items():
        assert g == E.paired_difference(right_s[splits == s], right_q[splits == s])
    assert "accuracy minus the student's" in md
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "int4_gap", Path(__file__).resolve().parents[1] / "benchmarks" / "quality" / "int4_gap.py")
    gap_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gap_mod)
    assert gap_mod.read_pair(Path(student), out, trained_pipeline["corpus"], sorted(gap)) == gap


@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="needs espeak-ng (make deps)")
def test_compression_keeps_the_phoneme_head_and_model_bin_computes_its_score(trained_pipeline, tmp_path, monkeypatch):
    """score = "phonemes": the student's phoneme head is cut with the last channel group (the cut head reads the pruned
    trunk as the whole head reads the masked original), fine-tuned in every stage, and model.bin (W4A8) computes the
    phoneme score on the QAT trunk's integers, over the recipe's span (its ctc keeping earlier windows); the last row is
    that integer model's evaluation, its clip accuracy the integer classifier's. A student without the head, and a bad score or weight, are refused before any training."""
    import copy
    from hostside import api
    from hostside.artifact import read_model_bin
    from hostside.boards import as_board
    from hostside.compress import prune as P
    from hostside.compress.pipeline import Pipeline
    from hostside.compress.recipe import check_against_checkpoint
    from hostside.train import PhonemeHead, load_checkpoint
    corpus = trained_pipeline["corpus"]
    ck = api.train(corpus, tmp_path / "c.pt", phoneme_ctc=0.5, epochs=3, seed=7, channels=8, blocks=2,
                   progress=False)["checkpoint"]
    spec = {"student": str(ck), "corpus": str(corpus), "output": str(tmp_path / "ph.bin"), "score": "phonemes",
            "span": 1.4,
            "stages": [{"name": "prune", "sparsity": 0.3, "sparsity_epochs": 1, "finetune_epochs": 1},
                       {"name": "quantize", "wbits": 4, "calib": 20, "epochs": 1}]}
    cuts, heads = [], []
    real_prune = P.prune
    monkeypatch.setattr(P, "prune", lambda model, keep: cuts.append(      # copies: fine-tuning trains them in place
        (copy.deepcopy(model), keep, copy.deepcopy(real_prune(model, keep)))) or copy.deepcopy(cuts[-1][2]))

    class Watched(Pipeline):                    # every head a stage hands on
        def _set_head(self, state):
            heads.append({k: v.clone() for k, v in state.items()})
            super()._set_head(state)

    pipe = Watched(from_dict(spec), progress=False, log=lambda *a: None)
    assert pipe.phonemes["weight"] == 0.5                     # the student's own weight unless the recipe says
    first = {k: v.clone() for k, v in pipe.scorer.head.state_dict().items()}
    pipe.run()
    exp = pipe.export(as_board("rv32-virt"), tmp_path / "ph.bin")
    assert len(heads) == 4                                    # sparsity training, the cut, fine-tuning, QAT
    assert not torch.equal(heads[-1]["proj.weight"], heads[1]["proj.weight"])       # the head trained on
    assert not torch.equal(heads[0]["proj.bias"], first["proj.bias"])
    (before, keep, pruned), = cuts
    n = pipe.phonemes["n"]
    whole, cut = PhonemeHead.from_state(heads[0], n), PhonemeHead.from_state(heads[1], n)
    assert cut.proj.in_features == len(keep[-1])
    x = torch.from_numpy(pipe.xv[:6])
    with torch.no_grad():
        assert torch.allclose(cut.logits(pruned.eval().trunk(x)),
                              whole.logits(P.masked_copy(before, keep).eval().trunk(x)), atol=1e-4)
    rows = {r["name"]: r for r in pipe.rows}
    assert [r["score"] for r in pipe.rows] == ["phonemes", "phonemes", "phonemes (integer)"]
    assert rows["prune"]["widths_after"][-1] == len(keep[-1]) < rows["prune"]["widths_before"][-1]
    assert exp["agreement"]["bit_exact_outputs"] == 1.0       # the class logits: the QAT model's, bit for bit
    g = read_model_bin(tmp_path / "ph.bin").graph
    assert g.output_layer.op == "ctc" and g.class_outputs == 3 and g.layers[-2].in_shape[2] == len(keep[-1])
    assert 4 in {L.wbits for L in g.layers if L.weights is not None}
    # the recipe's span: every stage's detector reads it, and the INT4 model.bin's ctc keeps the earlier windows
    from hostside.keyword import graph_span
    assert g.streaming and graph_span(g, pipe.fe.to_dict())["span_s"] == pytest.approx(1.4)
    assert [r["score_span_s"] for r in pipe.rows] == pytest.approx([1.4, 1.4, 1.4])
    # the integer row's clip accuracy is its classifier's (as the float rows' is), not an argmax beside the wake score
    logits = run_batch(g, np.stack([g.quantize_input(f) for f in pipe.xv]))[:, :3]
    assert rows[pipe.rows[-1]["name"]]["val_accuracy"] == pytest.approx((logits.argmax(1) == pipe.yv).mean())
    # the integer phoneme logits follow the fine-tuned float head on the QAT trunk
    with torch.no_grad():
        z = pipe.scorer.head.logits(pipe.final.trunk(x)).numpy()
    zq = np.stack([run(g, g.quantize_input(f), dump=True)[1][-2].reshape(z.shape[1:]) for f in x.numpy()])
    assert np.corrcoef(z.ravel(), (zq.ravel() - g.layers[-2].out_zp) * g.layers[-2].out_scale)[0, 1] > 0.97
    # refusals, before any training
    with pytest.raises(PqlrError, match="pqlr train --phoneme-ctc"):
        check_against_checkpoint(from_dict(spec | {"student": str(trained_pipeline["root"] / "m.pt")}),
                                 load_checkpoint(trained_pipeline["root"] / "m.pt")[1])
    with pytest.raises(PqlrError, match="score"):
        from_dict(spec | {"score": "phones"})
    for bad in ({"span": "long"}, {"span": 0}, {"span": True}, {"score": "classifier", "span": 1.8}):
        with pytest.raises(PqlrError, match="recipe: span"):
            from_dict(spec | bad)
    assert from_dict(spec | {"span": "auto"}).span == "auto"
    with pytest.raises(PqlrError, match="phoneme_ctc"):
        from_dict(spec | {"score": "classifier", "phoneme_ctc": 0.3})
