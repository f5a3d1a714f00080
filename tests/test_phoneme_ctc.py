"""The auxiliary phoneme CTC loss (`pqlr train --phoneme-ctc`, benchmarks/quality/attempts.md §29): which clips get
which targets, the loss over the clips that have one, and a training run whose checkpoint is the plain student."""
import shutil
from pathlib import Path

import numpy as np

import pytest
import torch

from hostside import api
from hostside.data.corpus import Clip
from hostside.data import phonetic
from hostside.data.phonetic import clip_targets, read_all, tokens
from hostside.errors import PqlrError
from hostside.models import build_model
from hostside.train import PhonemeHead

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="needs espeak-ng: `sudo apt-get install espeak-ng` (or `make deps`)")


@needs_espeak
def test_texts_read_a_batch_at_a_time_read_as_each_alone(monkeypatch):
    """read_all puts a language's texts without a clause mark through one espeak-ng process; each must come out as
    tokens() reads it alone — words of other languages and scripts, English phrases, a batch split mid-language —
    and texts with a clause mark (one line a clause) are read one by one."""
    monkeypatch.setattr(phonetic, "BATCH", 3)
    wanted = [("hey kimi", "en-us"), ("hey, kimi?", "en-us"), ("hey timi", "en-us"), ("the plants", "en-us"),
              ("brøndby strand", "da"), ("kærlighed", "da"), ("smörgås", "sv"), ("אהבה", "he"), ("բարեւ", "hy"),
              ("καλημέρα", "el"), ("selamat pagi", "id"), ("kimi.", "en-us")]
    read = read_all(wanted, workers=2)
    assert read == {ta: tokens(*ta) for ta in wanted}
    calls = []
    real = phonetic.tokens
    monkeypatch.setattr(phonetic, "tokens", lambda *ta: calls.append(ta) or real(*ta))
    read_all(wanted, workers=1)
    assert sorted(calls) == [("hey, kimi?", "en-us"), ("kimi.", "en-us")]     # a clause mark: a process of its own
    from hostside.data.kokoro import phonemes_batch
    with pytest.raises(ValueError):
        phonemes_batch(["hey, kimi"])


@needs_espeak
def test_a_batch_whose_lines_are_not_one_a_text_is_read_a_text_at_a_time(monkeypatch):
    """phonemes_batch answers None when espeak-ng's lines do not come out one a text (a fault of the batch, made
    here for the Danish batch): read_all then reads that batch's texts one process each, and the others' as batches."""
    from hostside.data import kokoro
    monkeypatch.setattr(phonetic, "BATCH", 2)
    real_batch, real_tokens = kokoro.phonemes_batch, phonetic.tokens
    monkeypatch.setattr(kokoro, "phonemes_batch", lambda texts, accent="en-us":
                        None if accent == "da" else real_batch(texts, accent))
    alone = []
    monkeypatch.setattr(phonetic, "tokens", lambda *ta: alone.append(ta) or real_tokens(*ta))
    wanted = [("hey kimi", "en-us"), ("the plants", "en-us"), ("hey timi", "en-us"), ("kærlighed", "da"),
              ("brøndby strand", "da"), ("smörgås", "sv")]
    read = read_all(wanted, workers=2)
    assert sorted(alone) == [("brøndby strand", "da"), ("kærlighed", "da")]
    monkeypatch.setattr(phonetic, "tokens", real_tokens)
    assert read == {ta: tokens(*ta) for ta in wanted} and all(read.values())


@needs_espeak
def test_targets_are_the_sounds_of_clips_whose_whole_utterance_is_in_the_window():
    clips = [Clip("a.wav", "hey_kimi", "train", "v1", "hey, kimi?"),
             Clip("b.wav", "unknown", "train", "v1", "hey gimi"),
             Clip("c.wav", "silence", "train", "", "", engine="none"),
             Clip("d.wav", "unknown", "train", "p1", "klettres:it/la", engine="human"),
             Clip("e.wav", "unknown", "train", "v1", "the old man would rather water the plants after lunch"),
             Clip("f.wav", "hey_kimi", "train", "v2", "hey kimi"),
             Clip("g.wav", "hey_kimi", "train", "v2", "hey kimi", spoken=16001),     # said slowly: the window
             Clip("h.wav", "hey_kimi", "train", "v2", "hey kimi", spoken=16000)]     # holds only its last second
    targets, vocab, stats = clip_targets(clips, ["hey_kimi"])
    kimi, gimi = targets[0], targets[1]
    assert len(kimi) == 6 and targets[5] == kimi                # punctuation and stress are not sounds
    assert [a != b for a, b in zip(kimi, gimi)] == [False, False, True, False, False, False]   # /k/ against /ɡ/
    assert targets[2] == [] and targets[3] is None and targets[4] is None
    assert targets[6] is None and targets[7] == kimi and stats["longer_than_window"] == 1
    assert min(kimi) >= 1 and "".join(vocab[i - 1] for i in kimi) == "".join(tokens("hey kimi"))   # 0 is the blank
    assert not set(vocab) & set("ˈˌː ,?")
    assert stats["with_phonemes"] == 4 and stats["silence"] == 1 and stats["without_target"] == 3
    assert stats["keywords"] == {"hey_kimi": ["".join(tokens("hey kimi"))]}      # both spellings read alike


def test_phoneme_head_leaves_out_clips_without_a_target_and_rewards_the_right_sounds():
    torch.manual_seed(0)
    head = PhonemeHead(8, 5)
    maps = torch.randn(3, 8, 25, 10)
    with_gap = head.loss(maps, [[1, 2, 3], None, [4, 4]])
    assert with_gap.item() == pytest.approx(head.loss(maps[[0, 2]], [[1, 2, 3], [4, 4]]).item(), rel=1e-6)
    assert head.loss(maps, [None, None, None]).item() == 0.0
    assert head.loss(maps[:1], [[]]).item() > 0                          # silence: every frame blank, learnable
    # a head whose frames say "1 then 2" scores the sequence (1, 2) far better than (2, 1)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.zero_()
        head.proj.weight[1, 0] = head.proj.weight[2, 1] = 10.0
    x = torch.zeros(1, 8, 25, 1)
    x[0, 0, :12], x[0, 1, 12:] = 1.0, 1.0
    assert head.loss(x, [[1, 2]]).item() + 5 < head.loss(x, [[2, 1]]).item()


def test_trunk_then_head_is_the_forward_pass():
    torch.manual_seed(0)
    net = build_model("dscnn-logmel", (49, 40), 3).eval()
    x = torch.randn(4, 49, 40)
    assert net.trunk(x).shape == (4, 64, 25, 10)
    assert torch.equal(net(x), net.head(net.trunk(x)))


@needs_espeak
def test_training_with_the_phoneme_loss_keeps_the_plain_student(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=3, seed=7, channels=8, blocks=1, progress=False)
    a, c = (torch.load(api.train(corpus, tmp_path / f"{w}.pt", phoneme_ctc=w, **opts)["checkpoint"], weights_only=False)
            for w in (0.0, 0.5))
    assert c["train_config"]["ctc_weight"] == 0.5 and a["train_config"]["ctc_weight"] == 0.0
    assert set(c["state_dict"]) == set(a["state_dict"])                  # the phoneme head is not in it
    assert not all(torch.equal(a["state_dict"][k], c["state_dict"][k]) for k in a["state_dict"])
    assert c["phoneme_ctc"]["with_phonemes"] > 0 and "phoneme_ctc" not in a
    assert c["phoneme_head"]["proj.weight"].shape == (len(c["phoneme_ctc"]["vocabulary"]) + 1, 8)   # kept beside it
    ctc = [h["ctc_loss"] for h in c["history"]]
    assert ctc[-1] < ctc[0]                                              # it learns the sounds
    assert api.export(tmp_path / "0.5.pt", corpus, "rv32-virt", tmp_path / "c.bin", calib_size=20)
    with pytest.raises(PqlrError, match="phoneme CTC weight"):
        api.train(corpus, tmp_path / "x.pt", phoneme_ctc=-1, **opts)
    with pytest.raises(PqlrError, match="has none: use a DS-CNN"):
        api.train(corpus, tmp_path / "x.pt", model="microbert-2l", phoneme_ctc=0.5, epochs=1, seed=7, progress=False)


def _frames(labels: list[int], vocab: int = 5, sure: float = 8.0) -> torch.Tensor:
    """[T, 1, V + 1] log-probabilities whose frame t says labels[t] (0: blank) with confidence `sure`."""
    logits = torch.zeros(len(labels), 1, vocab + 1)
    for t, lab in enumerate(labels):
        logits[t, 0, lab] = sure
    return torch.log_softmax(logits, dim=2)


def test_phoneme_scores_ask_for_the_phrase_in_order_and_the_anywhere_score_frees_its_surroundings():
    from hostside.keyword import anywhere_score, ctc_window_score
    phrase = (1, 2, 3)
    alone = _frames([0, 0, 1, 1, 0, 2, 0, 3, 3, 0, 0])
    reversed_ = _frames([0, 0, 3, 3, 0, 2, 0, 1, 1, 0, 0])
    talk = _frames([4, 5, 4, 1, 0, 2, 0, 3, 5, 4, 5])           # the phrase with other sounds around it
    for score in (ctc_window_score, anywhere_score):
        assert score(alone, phrase).item() > 0.9
        assert score(reversed_, phrase).item() < 0.05
        assert 0.0 <= score(talk, phrase).item() <= 1.0
    assert anywhere_score(talk, phrase).item() > 0.9 > 0.05 > ctc_window_score(talk, phrase).item()
    assert anywhere_score(_frames([4, 1, 5, 2, 4, 3, 5]), phrase).item() < 0.05   # in order, but other sounds between


def test_a_window_too_short_for_the_phrase_scores_nothing_not_everything():
    """CTC's zero_infinity turns the infinite loss of a phrase that cannot fit the frames into 0, which read as a
    score is 1.0: every window would fire. Such a window scores 0 (the device's fixed-point pass gives ~0 too), on
    every frame count up to the phrase's need (one per phoneme, a blank between equal neighbours), and a stream's
    first short span (lengths) alike; the hinge on negatives takes nothing from it."""
    from hostside.keyword import ctc_window_log_score, ctc_window_score, min_frames
    phrase = (1, 2, 2, 3)                                       # needs 5 frames: 1 2 _ 2 3
    assert min_frames(phrase) == 5 and min_frames((1, 2, 3)) == 3
    for frames in ([1, 2, 3], [1, 2, 0, 2]):
        assert ctc_window_score(_frames(frames), phrase).item() == 0.0
    fits = _frames([1, 2, 0, 2, 3])
    assert ctc_window_score(fits, phrase).item() > 0.9
    both = torch.cat([fits, fits], 1)
    got = ctc_window_score(both, phrase, torch.tensor([5, 4])).tolist()
    assert got[0] > 0.9 and got[1] == 0.0
    assert torch.relu(ctc_window_log_score(both, phrase, torch.tensor([4, 4])) + 1.0).sum().item() == 0.0


@needs_espeak
def test_eval_reads_the_phoneme_score_and_keeps_the_classifier_for_clips(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    ck = api.train(corpus, tmp_path / "c.pt", phoneme_ctc=0.5, ema=0.9, epochs=2, seed=7, channels=8, blocks=1,
                   progress=False)["checkpoint"]                     # the head averaged as the trunk is
    saved = torch.load(ck, weights_only=False)
    assert saved["phoneme_ctc"]["keywords"]["hey_kimi"] and set(saved["phoneme_head"]) == {"proj.weight", "proj.bias"}
    plain = api.evaluate(ck, corpus, tmp_path / "a")
    ph = api.evaluate(ck, corpus, tmp_path / "p", score="phonemes-anywhere")
    assert plain["wakeword"]["score"] == "classifier" and ph["wakeword"]["score"] == "phonemes-anywhere"
    assert ph["splits"] == plain["splits"]                                  # clip accuracy: the classifier's
    assert ph["wakeword"]["det"]["points"] != plain["wakeword"]["det"]["points"]
    span = api.evaluate(ck, corpus, tmp_path / "s", score="phonemes", span_s=1.4)
    assert span["wakeword"]["score_span_s"] == 1.4 and ph["wakeword"]["score_span_s"] == 1.0
    # each wake-word file, and each recording, is a stream of its own: its first window reads only itself
    from hostside import evaluate as E
    from hostside.data.corpus import load_corpus
    from hostside.data.features import FrontEnd
    from hostside.keyword import detector_fn
    from hostside.train import load_checkpoint
    net, c = load_checkpoint(ck)
    fe, data = FrontEnd.from_dict(c["frontend"]), load_corpus(corpus)
    longer, window = detector_fn(c, "phonemes", span_s=1.4), detector_fn(c, "phonemes")
    clips, a = E._positive_posteriors(net, data, fe, longer, "test", 100.0, 0)
    _, b = E._positive_posteriors(net, data, fe, window, "test", 100.0, 0)
    assert len(a) > 1 and all(len(x) == len(y) for x, y in zip(a, b))        # the file's windows, the lead's dropped
    assert any(not np.allclose(x, y) for x, y in zip(a, b))
    # a wake-word file's stream begins with the room before it (evaluate.room_lead): 0.4 s for a 1.4 s span, and
    # 0.4 s more, since its two blocks are read from the centres of windows two blocks older (Q = 2 of 5 blocks)
    lead = E.lead_windows(longer.history_s, 100.0)
    assert longer.offset_blocks == 2 and lead == 8 and E.lead_windows(window.history_s, 100.0) == 0
    first = detector_fn(c, "phonemes", span_s=1.4, span_from="first")
    assert first.offset_blocks == 0 and E.lead_windows(first.history_s, 100.0) == 4
    got = []
    for clip, x in zip(clips, a):
        audio = E._stream_audio(data, clip.file, fe.sample_rate)
        room = E.room_lead(clip, audio, lead * 1600, fe.sample_rate)
        assert np.allclose(E.stream_posteriors(net, longer, np.concatenate([room, audio]), fe, 100.0)[lead:], x)
        got.append(np.allclose(E.stream_posteriors(net, longer, audio, fe, 100.0), x))
    assert not all(got)                                         # the room is read: not the stream from nothing
    audio = E._stream_audio(data, next(cl for cl in data.clips if cl.split == "test").file, fe.sample_rate)
    assert np.isclose(E.stream_posteriors(net, longer, audio, fe, 100.0)[0],
                      E.stream_posteriors(net, window, audio, fe, 100.0)[0])
    assert span["splits"] == plain["splits"]
    with pytest.raises(PqlrError, match="the classifier reads one window"):
        api.evaluate(ck, corpus, tmp_path / "x", span_s=1.4)
    with pytest.raises(PqlrError, match="whole blocks of 0.2 s"):                 # before any work
        api.evaluate(ck, corpus, tmp_path / "x", score="phonemes", span_s=1.7)
    assert not (tmp_path / "x").exists()
    with pytest.raises(PqlrError, match="retrain with --phoneme-ctc"):
        api.evaluate(trained_pipeline["root"] / "m.pt", corpus, tmp_path / "x", score="phonemes")
    with pytest.raises(PqlrError, match="one of classifier"):
        api.evaluate(ck, corpus, tmp_path / "x", score="posterior")


class _LabelNet(torch.nn.Module):
    """A stand-in student whose trunk reads each head frame's phoneme from its window's features (frame j: feature
    row 2j, column 0), so that a test decides what the phoneme head says in every window of a stream."""

    def trunk(self, x):
        labels = x[:, ::2, 0][:, :25].round().long()                        # [N, 25]
        return torch.nn.functional.one_hot(labels, 6).float().permute(0, 2, 1).unsqueeze(3)   # [N, 6, 25, 1]

    def head(self, maps):
        return torch.zeros(maps.shape[0], 2)


def _span_scorer(span_s, best=False):
    from hostside.keyword import PhonemeScorer
    ck = {"classes": ["wake", "unknown"], "phoneme_ctc": {"vocabulary": "abcde", "keywords": {"wake": ["abc"]}},
          "phoneme_head": {"proj.weight": 8 * torch.eye(6), "proj.bias": torch.zeros(6)},
          "frontend": {"sample_rate": 16000, "clip_samples": 16000, "hop_length": 320}}
    return PhonemeScorer(ck, "phonemes", span_s=span_s, best_span=best)


def _stream_windows(timeline: list[int], n: int) -> np.ndarray:
    """[n, 49, 40] features of n windows 100 ms apart over a timeline of 40 ms head frames (0: blank): window i's
    frame j is the timeline at 100 i + 40 j ms."""
    x = np.zeros((n, 49, 40), np.float32)
    for i in range(n):
        for j in range(25):
            t = (100 * i + 40 * j) // 40
            x[i, 2 * j, 0] = timeline[t] if t < len(timeline) else 0
    return x


def test_a_longer_span_reads_a_phrase_longer_than_the_window_from_the_stream():
    net = _LabelNet()
    timeline = [0] * 10 + [1] * 12 + [0] * 12 + [2] * 12 + [3] * 12 + [0] * 40   # "a", a pause, "b c": 1.92 s
    x = _stream_windows(timeline, 24)
    one = _span_scorer(None)(net, x)[:, 0]
    assert one.max() < 0.25                                   # no 1 s window holds the whole phrase
    long = _span_scorer(1.8)
    got = long(net, x)[:, 0]
    assert got.max() > 0.9 and got[:2].max() < 0.05           # read whole once the stream holds it, not before
    # the same windows in two calls, one stream: the same scores; new_stream() forgets what came before
    long.new_stream()
    assert np.allclose(np.concatenate([long(net, x[:7])[:, 0], long(net, x[7:])[:, 0]]), got)
    long.new_stream()
    assert np.allclose(long(net, x[7:])[:, 0], _span_scorer(1.8)(net, x[7:])[:, 0])
    assert not np.allclose(long(net, x[7:])[:, 0][:3], got[7:10])     # …which a fresh stream cannot read
    short = _stream_windows([0] * 5 + [1, 1, 0, 2, 2, 0, 3, 3] + [0] * 60, 12)   # a short phrase: every span finds it
    assert _span_scorer(None)(net, short)[:, 0].max() > 0.9 and _span_scorer(1.4)(net, short)[:, 0].max() > 0.9
    # best_span: each window's best over the spans from the window up: at least the window's and the longest's score
    best = _span_scorer(1.8, best=True)(net, x)[:, 0]
    assert (best >= np.maximum(one, got) - 1e-6).all()
    before = _stream_windows([0] * 5 + [4] * 20 + [1, 1, 0, 2, 2, 0, 3, 3] + [0] * 60, 16)   # speech right before
    assert _span_scorer(1.8)(net, before)[:, 0].max() < 0.25                 # in every 1.8 s span with the phrase
    assert _span_scorer(1.8, best=True)(net, before)[:, 0].max() > 0.9       # the window alone holds it without


class _LabelNetWithClassifier(_LabelNet):
    """_LabelNet whose classifier puts a known posterior on the wake class: sigmoid of the window's feature [0, 1]."""

    def head(self, maps):
        return torch.stack([self._x, torch.zeros_like(self._x)], 1)

    def trunk(self, x):
        self._x = x[:, 0, 1]
        return super().trunk(x)


def test_fuse_weighs_the_classifiers_wake_posterior_into_the_phoneme_score():
    """--fuse W (attempts.md §36): the wake score is classifier^W × phoneme score^(1 − W), window and span alike;
    0 leaves the phoneme score; the other classes' posteriors stay the classifier's."""
    from hostside.keyword import detector_fn
    net = _LabelNetWithClassifier()
    x = _stream_windows([0] * 5 + [1, 1, 0, 2, 2, 0, 3, 3] + [0] * 60, 12)
    x[:, 0, 1] = np.linspace(-3, 3, len(x))
    cls = 1 / (1 + np.exp(-x[:, 0, 1]))
    for span in (None, 1.8):
        plain = _span_scorer(span)(net, x)
        sc = _span_scorer(span)
        sc.fuse = 0.5
        fused = sc(net, x)
        assert np.allclose(fused[:, 0], np.sqrt(cls * plain[:, 0]), atol=1e-6)
        assert np.allclose(fused[:, 1], 1 - cls, atol=1e-6) and np.allclose(plain[:, 1], 1 - cls, atol=1e-6)
    ck = {"classes": ["wake", "unknown"], "phoneme_ctc": {"vocabulary": "abcde", "keywords": {"wake": ["abc"]}},
          "phoneme_head": {"proj.weight": 8 * torch.eye(6), "proj.bias": torch.zeros(6)},
          "frontend": {"sample_rate": 16000, "clip_samples": 16000, "hop_length": 320}}
    assert detector_fn(ck, "phonemes", fuse=0.3).fuse == 0.3
    with pytest.raises(PqlrError, match="in \\[0, 1\\)"):
        detector_fn(ck, "phonemes", fuse=1.0)
    with pytest.raises(PqlrError, match="give --score phonemes"):
        detector_fn(ck, "classifier", fuse=0.5)
    with pytest.raises(PqlrError, match="--fuse: a model.bin"):
        api.evaluate(Path("model.bin"), Path("corpus"), fuse=0.5)


def test_the_room_before_a_wake_word_file_is_its_own_noise():
    """evaluate.room_lead: the file's noise before the phrase (the labelled second's start, or the phrase's when it
    is longer), else after the labelled second, repeated to length; silence when there is neither."""
    from types import SimpleNamespace
    from hostside import evaluate as E
    audio = np.concatenate([np.full(16000, 1.0), np.full(16000, 5.0), np.full(16000, 2.0)])   # 3 s at 16 kHz
    short = SimpleNamespace(offset=16000, spoken=9000)
    room = E.room_lead(short, audio, 30000, 16000)
    assert room.shape == (30000,) and set(np.unique(room)) == {1.0}        # before the phrase, 50 ms short of it
    long_ = SimpleNamespace(offset=16000, spoken=30000)                     # a 1.9 s phrase ending at 2 s: no head
    assert set(np.unique(E.room_lead(long_, audio, 8000, 16000))) == {2.0}   # after the labelled second
    tight = SimpleNamespace(offset=4000, spoken=-1)
    assert not E.room_lead(tight, audio[:22000], 8000, 16000).any()         # neither is 0.3 s long: silence
    ramp = np.concatenate([np.arange(15200, dtype=float), np.full(32800, -1.0)])
    r = E.room_lead(SimpleNamespace(offset=16000, spoken=-1), ramp, 40000, 16000)
    assert len(r) == 40000 and np.abs(np.diff(r)).max() <= 1.0              # back and forth: no jumps…
    assert r[-1] == 0.0 and set(np.unique(r)) <= set(range(15200))          # …ending where the file begins
    assert E.room_lead(short, audio, 0, 16000).shape == (0,) and E.lead_windows(0.8, 100.0) == 8


def test_a_span_is_the_window_and_whole_blocks_of_the_phonemes_score():
    from hostside.keyword import detector_fn
    x = _stream_windows([0] * 80, 3)
    with pytest.raises(PqlrError, match="whole blocks of 0.2 s"):
        _span_scorer(1.7)(_LabelNet(), x)
    with pytest.raises(PqlrError, match="at least the window"):
        _span_scorer(0.8)
    with pytest.raises(PqlrError, match="the classifier reads one window"):
        detector_fn({}, "classifier", span_s=1.4)
    with pytest.raises(PqlrError, match="reads the span it was exported with"):
        api.evaluate(Path("model.bin"), Path("corpus"), span_s=1.4)


def test_span_auto_holds_99_percent_of_the_training_phrases():
    """`--span auto` (keyword.phrase_span): the window plus the fewest whole 0.2 s blocks (a block: 2 windows at the
    100 ms stride over 40 ms head frames) that hold 99 % of the training phrases — the window when they fit, 1.8 s
    for §33's 1.62 s, every phrase with share 1 — and a corpus that records no lengths is refused with what to do."""
    from hostside.keyword import phrase_span
    ck = {
        "classes": ["wake", "unknown"], "phoneme_ctc": {"vocabulary": "abcde", "keywords": {"wake": ["abc"]}},
        "phoneme_head": {"proj.weight": 8 * torch.eye(6), "proj.bias": torch.zeros(6)},
        "frontend": {"sample_rate": 16000, "clip_samples": 16000, "hop_length": 320}}
    net = _LabelNet()
    assert phrase_span(ck, net, [0.4, 0.7, 0.99]) == 1.0
    spoken = np.r_[np.linspace(0.6, 1.62, 200), [2.1]]
    assert phrase_span(ck, net, spoken) == 1.8
    assert phrase_span(ck, net, spoken, share=1.0) == 2.2
    assert phrase_span(ck, net, [1.4] * 10) == 1.4 and phrase_span(ck, net, [1.41] * 10) == 1.6
    assert phrase_span(ck, net, [1.0] * 10, stride_ms=50) == 1.0
    with pytest.raises(PqlrError, match="--span 1.8"):
        phrase_span(ck, net, [])


def test_the_hinge_on_negatives_pushes_their_phrase_score_below_the_floor():
    from hostside.keyword import ctc_window_score
    torch.manual_seed(0)
    head = PhonemeHead(8, 5)
    phrase = [(1, 2, 3)]
    x = torch.zeros(2, 8, 24, 1)                     # example 0's frames say 1, 2, 3; example 1's say 4 throughout
    x[0, 1, 2:8], x[0, 2, 10:16], x[0, 3, 18:22], x[1, 4] = 1.0, 1.0, 1.0, 1.0
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.zero_()
        head.proj.bias[0] = 4.0                      # a frame that says nothing says blank
        for c in range(1, 5):
            head.proj.weight[c, c] = 8.0
    score = ctc_window_score(head(x), phrase[0])
    assert score[0] > 0.5 > 0.01 > score[1]
    loss = head.negative_loss(x, phrase, floor=0.3)
    assert loss.item() == pytest.approx(torch.relu(torch.log(score) - np.log(0.3)).mean().item(), rel=1e-5)
    assert head.negative_loss(x[1:], phrase, floor=0.3).item() == 0.0        # already below: nothing to do
    assert head.negative_loss(x[:0], phrase, floor=0.3).item() == 0.0        # no negative in the batch
    assert head.negative_loss(x[:1], [(4, 4), (1, 2, 3)], 0.3).item() == pytest.approx(2 * loss.item(), rel=1e-5)
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    for _ in range(20):                              # descending it lowers the phrase's score on the negative
        opt.zero_grad()
        head.negative_loss(x[:1], phrase, floor=0.3).backward()
        opt.step()
    with torch.no_grad():
        assert ctc_window_score(head(x[:1]), phrase[0]).item() < 0.35
    from hostside.train import TrainConfig
    with pytest.raises(PqlrError, match="give --phoneme-ctc too"):
        TrainConfig(ctc_negative=1.0)
    with pytest.raises(PqlrError, match="negative floor"):
        TrainConfig(ctc_weight=0.3, ctc_negative=1.0, ctc_negative_floor=1.0)


@needs_espeak
def test_training_with_the_hinge_on_negatives_records_it_and_needs_the_phoneme_loss(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=2, seed=7, channels=8, blocks=1, progress=False, phoneme_ctc=0.5)
    # a floor a barely trained head's negatives lie above (its blanks not yet learned, every score is tiny)
    plain, hinged = (torch.load(api.train(corpus, tmp_path / f"{w}.pt", phoneme_negatives=w, phoneme_negative_floor=1e-9,
                                          **opts)["checkpoint"], weights_only=False) for w in (0.0, 1.0))
    assert hinged["train_config"]["ctc_negative"] == 1.0 and plain["train_config"]["ctc_negative"] == 0.0
    neg = [h["negative_loss"] for h in hinged["history"]]
    assert neg[0] > 0 and neg[-1] < neg[0] and "negative_loss" not in plain["history"][0]
    assert hinged["phoneme_ctc"]["negative_sequences"] >= 1
    assert not torch.equal(plain["phoneme_head"]["proj.weight"], hinged["phoneme_head"]["proj.weight"])
    with pytest.raises(PqlrError, match="give --phoneme-ctc too"):
        api.train(corpus, tmp_path / "x.pt", **{**opts, "phoneme_ctc": 0.0}, phoneme_negatives=1.0)


def test_phoneme_teacher_is_the_mean_of_its_heads_and_the_distillation_loss_is_their_kl():
    """train.PhonemeTeacher: log of the mean of its members' per-frame posteriors; PhonemeHead.distill_loss: KL per
    frame, 0 for a student head that is the teacher, positive otherwise, and it teaches: descending it moves a head
    towards the teacher's posteriors."""
    from hostside.train import PhonemeTeacher
    torch.manual_seed(0)
    nets = [build_model("dscnn-logmel", (49, 40), 3, channels=8, blocks=1).eval() for _ in range(2)]
    heads = [PhonemeHead(8, 5).eval() for _ in range(2)]
    x = torch.randn(3, 49, 40)
    t = PhonemeTeacher(nets, heads)(x)
    want = torch.log((heads[0](nets[0].trunk(x)).exp() + heads[1](nets[1].trunk(x)).exp()) / 2)
    assert t.shape == want.shape and torch.allclose(t, want, atol=1e-6)
    assert torch.allclose(t.exp().sum(2), torch.ones(t.shape[:2]), atol=1e-5)
    one = PhonemeTeacher(nets[:1], heads[:1])(x)
    maps = nets[0].trunk(x).detach()
    assert heads[0].distill_loss(maps, one).abs().item() < 1e-6
    student = PhonemeHead(8, 5)
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    first = student.distill_loss(maps, one).item()
    for _ in range(50):
        opt.zero_grad()
        loss = student.distill_loss(maps, one)
        loss.backward()
        opt.step()
    assert first > 0 and loss.item() < 0.5 * first
    with pytest.raises(ValueError, match="frames"):
        student.distill_loss(maps[:, :, :10], one)
    # on the score: the teacher's is the mean of its members' window scores, and descending the binary
    # cross-entropy brings the student's score of each window to it
    from hostside.keyword import ctc_window_score
    phrase = [(1, 2, 3), (1, 3)]
    two = PhonemeTeacher(nets, heads, phrase)
    got = two.score(x)
    want = torch.stack([torch.stack([ctc_window_score(h(n.trunk(x)), q) for q in phrase]).max(0).values
                        for n, h in zip(nets, heads)]).mean(0)
    assert got.shape == (3,) and torch.allclose(got, want)
    target = torch.tensor([0.9, 0.02, 0.5])
    student = PhonemeHead(8, 5)
    wide = torch.randn(3, 8, 25, 10)                       # maps a linear head can tell apart
    opt = torch.optim.Adam(student.parameters(), lr=0.2)
    for _ in range(600):
        opt.zero_grad()
        loss = student.distill_score_loss(wide, phrase, target)
        loss.backward()
        opt.step()
    with torch.no_grad():
        mine = torch.stack([ctc_window_score(student(wide), q) for q in phrase]).max(0).values
    assert torch.allclose(mine, target, atol=0.1), mine
    with pytest.raises(ValueError, match="sequences"):
        PhonemeTeacher(nets, heads).score(x)


@needs_espeak
def test_training_distils_the_phoneme_head_from_teachers_heads(trained_pipeline, tmp_path):
    corpus = trained_pipeline["corpus"]
    opts = dict(epochs=2, seed=7, channels=8, blocks=1, progress=False)
    t = api.train(corpus, tmp_path / "t.pt", phoneme_ctc=0.5, **opts)["checkpoint"]
    c = torch.load(api.train(corpus, tmp_path / "s.pt", phoneme_ctc=0.5, phoneme_distill=1.0, kd_alpha=0.0,
                             teacher=[t, t], **opts)["checkpoint"], weights_only=False)
    assert c["train_config"]["ctc_distill"] == 1.0
    assert all(h["phoneme_distill_loss"] > 0 for h in c["history"])
    assert c["phoneme_ctc"]["distilled_from"] == [str(t), str(t)]
    assert "distillation" not in c                       # kd_alpha 0: the classifier learnt from the hard labels
    s = torch.load(api.train(corpus, tmp_path / "s2.pt", phoneme_ctc=0.5, phoneme_distill=1.0, kd_alpha=0.0,
                             phoneme_distill_on="score", teacher=t, **opts)["checkpoint"], weights_only=False)
    assert s["phoneme_ctc"]["distilled_on"] == "score" and c["phoneme_ctc"]["distilled_on"] == "frames"
    assert all(h["phoneme_distill_loss"] > 0 for h in s["history"])
    with pytest.raises(PqlrError, match="frames or score"):
        api.train(corpus, tmp_path / "x.pt", phoneme_ctc=0.5, phoneme_distill=1.0, phoneme_distill_on="window",
                  teacher=t, **opts)
    with pytest.raises(PqlrError, match="give --teacher"):
        api.train(corpus, tmp_path / "x.pt", phoneme_ctc=0.5, phoneme_distill=1.0, **opts)
    with pytest.raises(PqlrError, match="give --phoneme-ctc"):
        api.train(corpus, tmp_path / "x.pt", phoneme_distill=1.0, teacher=t, **opts)
    plain = api.train(corpus, tmp_path / "p.pt", **opts)["checkpoint"]
    with pytest.raises(PqlrError, match="no phoneme head"):
        api.train(corpus, tmp_path / "x.pt", phoneme_ctc=0.5, phoneme_distill=1.0, teacher=plain, **opts)
