"""The near-miss margin loss (`pqlr train --pair-loss`): who is paired with whom, the loss, alike augmentation."""
import numpy as np
import pytest
import torch

from hostside import api
from hostside.data.corpus import Clip, Corpus
from hostside.data.pairs import corpus_partners, near_miss_texts, partners
from hostside.errors import PqlrError
from hostside.train import Augmenter, TrainConfig, pair_loss, smoothed_target_log_odds, wake_log_odds


def _clip(voice, label, text):
    return Clip(file=f"{voice}-{text}.wav", label=label, split="train", voice=voice, text=text)


def test_partners_are_the_same_voices_near_misses_rhyming_with_its_own_spelling_first():
    clips = [_clip("a", "hey_kimi", "hey kimi"),          # 0
             _clip("a", "hey_kimi", "hey keemee!"),       # 1
             _clip("a", "unknown", "hey timi"),           # 2
             _clip("a", "unknown", "hey teemee"),         # 3
             _clip("a", "unknown", "hello"),              # 4: not a near miss
             _clip("a", "unknown", "ahoy kimi"),          # 5: another greeting, same rime
             _clip("b", "unknown", "hey dimi"),           # 6: another voice
             _clip("c", "hey_kimi", "hey, kimi?"),        # 7: a voice without near misses
             _clip("d", "hey_kimi", "hey kimmy"),         # 8: no rhyme of its spelling: every near miss of d
             _clip("d", "unknown", "hey timi"),           # 9
             _clip("d", "unknown", "hey"),                # 10: the phrase's word alone
             _clip("d", "silence", "")]                   # 11
    got = partners(clips, "hey_kimi", "unknown", "hey kimi", ("hey kimmy", "hey keemee"))
    assert len(got) == len(clips)
    assert sorted(got[0]) == [2, 5]
    assert sorted(got[1]) == [3]
    assert len(got[7]) == 0
    assert sorted(got[8]) == [9, 10]
    for i in (2, 3, 4, 5, 6, 9, 10, 11):                 # only wake-word clips have partners
        assert len(got[i]) == 0


def test_near_misses_derive_from_any_phrase_and_never_include_it():
    near = near_miss_texts("ok nova")
    assert {"ok bova", "ok tova", "ok", "nova", "hi nova"} <= near
    assert "ok nova" not in near
    kimi = near_miss_texts("hey kimi", ("hey kimmy", "hey keemee"))
    assert {"hey timi", "hey teemee", "hey timmy"} <= kimi and not {"hey kimmy", "hey keemee"} & kimi


def test_pair_loss_is_zero_past_the_margin_and_pulls_the_pair_apart_below_it():
    wake = 0
    pos = torch.tensor([[5.0, 0.0, 0.0]], requires_grad=True)
    neg = torch.tensor([[0.0, 5.0, 0.0]], requires_grad=True)
    gap = (wake_log_odds(pos, wake) - wake_log_odds(neg, wake)).detach()
    assert float(gap) > 8
    assert float(pair_loss(pos, neg, wake, margin=4.0).detach()) == 0.0
    pos2 = torch.tensor([[1.0, 0.5, 0.0]], requires_grad=True)
    neg2 = torch.tensor([[0.8, 0.6, 0.0]], requires_grad=True)
    loss = pair_loss(pos2, neg2, wake, margin=4.0)
    gap2 = float((wake_log_odds(pos2, wake) - wake_log_odds(neg2, wake)).detach())
    assert float(loss.detach()) == pytest.approx(4.0 - gap2)
    loss.backward()
    assert pos2.grad[0, wake] < 0 < neg2.grad[0, wake]      # descent raises the wake-word's score, lowers the miss's
    # the log-odds are log p / (1 - p) of the softmax
    p = torch.softmax(pos2.detach(), 1)[0, wake]
    assert float(wake_log_odds(pos2.detach(), wake)) == pytest.approx(float(torch.log(p / (1 - p))), abs=1e-5)
    pos3, neg3 = pos2.detach().clone().requires_grad_(), neg2.detach().clone().requires_grad_()
    only_miss = pair_loss(pos3, neg3, wake, margin=4.0, sides="miss")
    assert float(only_miss.detach()) == pytest.approx(float(loss.detach()))    # the same value, one side moved
    only_miss.backward()
    assert (pos3.grad is None or torch.count_nonzero(pos3.grad) == 0) and neg3.grad[0, wake] > 0
    # capped: the wake-word side moves only below the cross-entropy's own target
    cap = smoothed_target_log_odds(0.05, 3)
    z = torch.tensor(cap + np.log(2.0), requires_grad=True)       # logits [z, 0, 0]: wake log-odds z − log 2 = cap
    nn_loss = torch.nn.functional.cross_entropy(torch.stack([z, torch.tensor(0.0), torch.tensor(0.0)])[None],
                                                torch.tensor([0]), label_smoothing=0.05)
    nn_loss.backward()
    assert abs(float(z.grad)) < 1e-6                                # the smoothed cross-entropy's minimum
    assert smoothed_target_log_odds(0.0, 3) == float("inf")
    high = torch.tensor([[cap + 3.0, 0.0, 0.0]], requires_grad=True)
    low = torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True)
    for pos, moved in ((high, False), (low, True)):
        neg = torch.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
        pair_loss(pos, neg, wake, margin=4.0, sides="capped", cap=cap).backward()
        assert (float(pos.grad[0, wake]) < 0) == moved and neg.grad[0, wake] > 0
    empty = torch.zeros(0, 3, requires_grad=True)
    assert float(pair_loss(empty, empty, wake).detach()) == 0.0


def test_a_tied_pair_is_augmented_alike_and_tying_draws_nothing_more():
    from hostside.data.features import preset
    fe = preset("logmel40")
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(0, 0.1, (3, fe.sample_rate)).astype(np.float32))
    bank = rng.normal(0, 0.3, (5, fe.sample_rate))
    cfg = TrainConfig(vtlp=(0.8, 1.25), noise_prob=1.0)
    batch = torch.cat([x, x[:1]])                                   # example 3 is example 0's partner
    tied = Augmenter(fe, cfg, bank, torch.Generator().manual_seed(0))(batch, tie=torch.tensor([0, 1, 2, 0]))
    assert torch.equal(tied[3], tied[0])
    free = Augmenter(fe, cfg, bank, torch.Generator().manual_seed(0))(batch)
    assert not torch.allclose(free[3], free[0])
    same = Augmenter(fe, cfg, bank, torch.Generator().manual_seed(0))(batch, tie=torch.arange(4))
    assert torch.equal(same, free)                                 # identity tie: the same draws, the same result


def test_pair_loss_training_is_recorded_changes_the_weights_and_is_checked(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=1, seed=7, channels=8, blocks=1, progress=False)
    api.train(corpus, tmp_path / "a.pt", **opts)
    api.train(corpus, tmp_path / "p.pt", pair_loss=1.0, pair_margin=3.0, **opts)
    a, p = (torch.load(tmp_path / f, weights_only=False) for f in ("a.pt", "p.pt"))
    assert a["train_config"]["pair_weight"] == 0.0 and "pairs" not in a
    assert p["train_config"]["pair_weight"] == 1.0 and p["train_config"]["pair_margin"] == 3.0
    assert p["pairs"]["examples_with_near_misses"] > 0 and p["pairs"]["pairs_per_epoch"] > 0
    assert not all(torch.equal(a["state_dict"][k], p["state_dict"][k]) for k in a["state_dict"])
    for bad, match in (({"pair_loss": -1.0}, "pair loss weight"), ({"pair_loss": 1.0, "pair_margin": 0.0},
                                                                   "pair margin"),
                       ({"pair_loss": 1.0, "pair_sides": "wake"}, "pair sides")):
        with pytest.raises(PqlrError, match=match):
            api.train(corpus, tmp_path / "x.pt", **bad, **opts)


def test_pairs_need_a_wake_word_corpus(trained_pipeline, tmp_path):
    folder = Corpus(root=tmp_path, clips=[_clip("a", "yes", "yes")], classes=("yes", "no"), task="folder")
    with pytest.raises(PqlrError, match="wake-word corpus"):
        corpus_partners(folder)
    from hostside.data.corpus import load_corpus
    c = load_corpus(trained_pipeline["corpus"])
    got, wake = corpus_partners(c)
    assert c.classes[wake] == "hey_kimi" and len(got) == len(c.split("train"))
    train = c.split("train")
    for clip, mates in zip(train, got):
        assert all(train[j].voice == clip.voice and train[j].label == "unknown" for j in mates)


def test_the_separation_probe_counts_ordered_pairs_and_runs_on_a_checkpoint(trained_pipeline):
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "quality" / "probe.py"
    spec = importlib.util.spec_from_file_location("probe", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 20).astype(float)   # many ties
    brute = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg])
    assert probe._ordered(pos, neg) == pytest.approx(brute)
    assert probe._ordered(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    p = subprocess.run([sys.executable, str(path), "separation", str(trained_pipeline["root"] / "m.pt"), "--corpus",
                        str(trained_pipeline["corpus"]), "--split", "train"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    name = trained_pipeline["root"].name                      # a checkpoint is named by its folder
    rows = [line for line in p.stdout.splitlines() if line.startswith(f"| {name} |")]
    assert rows and rows[-1].split("|")[2].strip() == "all"
    assert 0.0 <= float(rows[-1].split("|")[-2]) <= 1.0
