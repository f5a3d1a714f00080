"""The wake word scored by its sounds in order: a window's wake score read from the phoneme head that training's
auxiliary CTC loss leaves beside the student (`pqlr train --phoneme-ctc`), instead of from the classifier.

The classifier pools the convolutional maps over the whole window before it decides, so it sees which sounds a
window holds, not in which order; real speech that holds /h/, /eɪ/, /k/, /i/, /m/ somewhere fires it. The phoneme
head reads the same maps frame by frame, and the score asks how well the phrase's phonemes, in order, explain them:
- `phonemes`: the whole window is the phrase and blanks (CTC's probability of the phrase given the window, summed
  over alignments), per phoneme: exp(−CTC loss / phonemes) — a window with other speech before or after the phrase
  scores lower;
- `phonemes-anywhere`: the best single alignment of the phrase over any span of the window, the frames before and
  after it free (a keyword-filler search), per phoneme — speech around the phrase costs nothing.
Both lie in [0, 1]; the highest over the phrase's spellings (each distinct phoneme sequence the wake class was
trained on) is the wake score. The other classes' posteriors are the classifier's. Measured in
benchmarks/quality/attempts.md §29. On the device, `pqlr export --score phonemes` adds the same score to the int8
graph (export/ptq.py phoneme_branch, graph.py's ctc op); graph_posteriors reads such a graph's output (§30).
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import PqlrError

SCORES = ("classifier", "phonemes", "phonemes-anywhere")


def ctc_window_score(lp: torch.Tensor, seq: tuple[int, ...]) -> torch.Tensor:
    """lp [T, N, V + 1] log-probabilities (blank 0) → [N] exp(−CTC loss of `seq` over the whole window / len(seq))."""
    t, n = lp.shape[:2]
    loss = torch.nn.functional.ctc_loss(lp, torch.tensor(seq).repeat(n, 1), torch.full((n,), t, dtype=torch.long),
                                        torch.full((n,), len(seq), dtype=torch.long), reduction="none",
                                        zero_infinity=True)
    return torch.exp(-loss / len(seq))


def anywhere_score(lp: torch.Tensor, seq: tuple[int, ...]) -> torch.Tensor:
    """lp [T, N, V + 1] → [N] exp(best log-probability of one CTC alignment of `seq` over a span of frames / len(seq)),
    the frames before and after the span free (Viterbi over the blank-interleaved states, entered from a free prefix
    and left into a free suffix)."""
    t_len, n = lp.shape[:2]
    ext = [0]
    for s in seq:
        ext += [s, 0]
    states = len(ext)
    floor = -1e9
    skip = torch.tensor([i >= 2 and ext[i] != 0 and ext[i] != ext[i - 2] for i in range(states)])
    emit = lp[:, :, ext]                                        # [T, N, S]
    alpha = torch.full((n, states), floor, dtype=lp.dtype)
    best = torch.full((n,), floor, dtype=lp.dtype)
    pad = torch.full((n, 2), floor, dtype=lp.dtype)
    enter = torch.full((n, states), floor, dtype=lp.dtype)
    enter[:, :2] = 0.0                                          # from the free prefix: the first blank or phoneme
    for t in range(t_len):
        one = torch.cat([pad[:, :1], alpha[:, :-1]], 1)
        two = torch.where(skip, torch.cat([pad, alpha[:, :-2]], 1), floor)
        alpha = torch.maximum(torch.maximum(alpha, one), torch.maximum(two, enter)) + emit[t]
        best = torch.maximum(best, torch.maximum(alpha[:, -1], alpha[:, -2]))    # then the free suffix
    return torch.exp(best / len(seq))


def graph_posteriors(graph, out: np.ndarray, wake: int = 0) -> np.ndarray:
    """An integer graph's int8 outputs [N, out] → what the streaming detector reads, [N, classes]: the softmax of the
    dequantised class logits; after a ctc (`pqlr export --score phonemes`) the wake class's replaced by the score
    exp(log score), the board's `phonemes` score."""
    L = graph.output_layer
    k = graph.class_outputs
    zp, scale = (L.in2_zp, L.in2_scale) if L.op == "ctc" else (L.out_zp, L.out_scale)
    logits = (np.asarray(out[:, :k], np.float64) - zp) * scale
    post = np.exp(logits - logits.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    if L.op == "ctc":
        post[:, wake] = graph.wake_scores(out)
    return post.astype(np.float32)


class GraphPredictor:
    """A predict function (model ignored, features [N, T, F]) → [N, C] for hostside.evaluate: the integer graph run
    by the numpy reference (the board's integers), read by graph_posteriors."""

    def __init__(self, graph):
        self.graph = graph

    def __call__(self, model, x: np.ndarray, batch: int = 512) -> np.ndarray:
        from .reference import run_batch
        if len(x) == 0:
            return np.zeros((0, self.graph.class_outputs), np.float32)
        q = np.stack([self.graph.quantize_input(f) for f in x])
        return graph_posteriors(self.graph, run_batch(self.graph, q, chunk=batch))


def detector_fn(ck: dict, kind: str):
    """What the streaming detector reads for a checkpoint `ck` and a wake score `kind` (SCORES): the classifier's
    posteriors (hostside.train.predict), or its PhonemeScorer."""
    from .train import predict
    if kind not in SCORES:
        raise PqlrError(f"--score {kind!r}: one of {', '.join(SCORES)}")
    return predict if kind == "classifier" else PhonemeScorer(ck, kind)


class PhonemeScorer:
    """A predict function (model, features [N, T, F]) → [N, C] for hostside.evaluate: the classifier's posteriors,
    the wake class's replaced by the phoneme score `kind` (SCORES). Built from a checkpoint trained with the phoneme
    loss: its head and vocabulary, and the phoneme sequences of the wake class's training texts."""

    def __init__(self, ck: dict, kind: str = "phonemes", wake: int = 0):
        from .train import PhonemeHead
        if kind not in SCORES[1:]:
            raise PqlrError(f"phoneme score {kind!r}: one of {', '.join(SCORES[1:])}")
        ctc = ck.get("phoneme_ctc") or {}
        if "phoneme_head" not in ck or not ctc.get("keywords"):
            raise PqlrError(f"--score {kind} reads the phoneme head that `pqlr train --phoneme-ctc WEIGHT` keeps beside "
                            f"the student; this checkpoint was trained without it: retrain with --phoneme-ctc 0.3")
        label = ck["classes"][wake]
        if not ctc["keywords"].get(label):
            raise PqlrError(f"the checkpoint's phoneme head was trained with no phonemes for {label!r}")
        vocab = ctc["vocabulary"]
        self.head = PhonemeHead.from_state(ck["phoneme_head"], len(vocab)).eval()
        index = {s: i + 1 for i, s in enumerate(vocab)}
        self.sequences = [tuple(index[s] for s in k) for k in ctc["keywords"][label]]
        self.wake = wake
        self.score = ctc_window_score if kind == "phonemes" else anywhere_score

    @torch.no_grad()
    def __call__(self, model, x: np.ndarray, batch: int = 512) -> np.ndarray:
        from .train import nhwc
        model.eval()
        out = []
        with nhwc(model):
            for i in range(0, len(x), batch):
                maps = model.trunk(torch.from_numpy(np.ascontiguousarray(x[i: i + batch], dtype=np.float32)))
                post = torch.softmax(model.head(maps), dim=1)
                lp = self.head(maps)
                post[:, self.wake] = torch.stack([self.score(lp, s) for s in self.sequences]).max(0).values
                out.append(post.numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
