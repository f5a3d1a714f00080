"""The wake word scored by its sounds in order: a window's wake score read from the phoneme head that training's
auxiliary CTC loss leaves beside the student (`pqlr train --phoneme-ctc`), instead of from the classifier.

The classifier pools the convolutional maps over the whole window before it decides, so it sees which sounds a
window holds, not in which order; real speech that holds /h/, /eɪ/, /k/, /i/, /m/ somewhere fires it. The phoneme
head reads the same maps frame by frame, and the score asks how well the phrase's phonemes, in order, explain them:
- `phonemes`: the whole window is the phrase and blanks (CTC's probability of the phrase given the window, summed
  over alignments), per phoneme: exp(−CTC loss / phonemes) — a window with other speech before or after the phrase
  scores lower; by default each phoneme may come out of the head as several spikes with blanks between (a long
  vowel heard twice: repeat_log_prob, `--phoneme-repeats`), not as exactly one;
- `phonemes-anywhere`: the best single alignment of the phrase over any span of the window, the frames before and
  after it free (a keyword-filler search), per phoneme — speech around the phrase costs nothing.
Both lie in [0, 1]; the highest over the phrase's spellings (each distinct phoneme sequence the wake class was
trained on) is the wake score. `phonemes` may read more than its window (`pqlr eval --span 1.8`): the head frames
earlier windows of the same stream saw before this one began, then its own, so that a phrase longer than the
window, or one the detector's smoothing would find whole in too few windows, is read whole (PhonemeScorer;
attempts.md §33: on the demo's corpus, 8 seeds, half the unseen wake words missed at equal real false accepts; host
only for now). The other classes' posteriors are the classifier's. Measured in
benchmarks/quality/attempts.md §29. On the device, `pqlr export --score phonemes` adds the same score to the int8
graph (export/ptq.py phoneme_branch, graph.py's ctc op); graph_posteriors reads such a graph's output (§30).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .data.features import FrontEnd
from .errors import PqlrError
from .graph import ctc_states

SCORES = ("classifier", "phonemes", "phonemes-anywhere")
SPAN_FROM = ("centre", "first")  # where in an earlier window the span's earlier blocks are read (PhonemeScorer)


def ctc_window_score(lp: torch.Tensor, seq: tuple[int, ...], lengths: torch.Tensor | None = None,
                     repeats: bool = False) -> torch.Tensor:
    """lp [T, N, V + 1] log-probabilities (blank 0) → [N] exp(−CTC loss of `seq` over the whole window / len(seq));
    lengths [N]: each example's frames, the first `lengths[i]` of T (default all T). repeats: each phoneme of `seq`
    may be said as several spikes with blanks between (repeat_log_prob)."""
    return torch.exp(ctc_window_log_score(lp, seq, lengths, repeats))


def ctc_window_log_score(lp: torch.Tensor, seq: tuple[int, ...], lengths: torch.Tensor | None = None,
                         repeats: bool = False) -> torch.Tensor:
    """The log of ctc_window_score: −CTC loss / len(seq), which training can descend (train.PhonemeHead.negative_loss)
    without the exponential underflowing. A window with fewer frames than the phrase needs (min_frames) cannot say
    it: −inf (score 0, as the device's fixed-point pass gives it), not the 0 (score 1) that CTC's zero_infinity
    would make of its infinite loss."""
    t, n = lp.shape[:2]
    lengths = torch.full((n,), t, dtype=torch.long) if lengths is None else lengths
    if repeats:                            # no path fits too few frames: −inf already
        return repeat_log_prob(lp, seq, lengths) / len(seq)
    loss = torch.nn.functional.ctc_loss(lp, torch.tensor(seq).repeat(n, 1).to(lp.device), lengths,
                                        torch.full((n,), len(seq), dtype=torch.long), reduction="none",
                                        zero_infinity=True)
    fits = lengths.to(loss.device) >= min_frames(seq)
    return torch.where(fits, -loss / len(seq), torch.full_like(loss, -math.inf))


def phrase_log_score(lp: torch.Tensor, sequences) -> torch.Tensor:
    """[N] the best over the phrase's phoneme sequences of ctc_window_log_score over the whole window: the log of
    the `phonemes` wake score (what training's hinge and distillation read, train.PhonemeHead)."""
    return torch.stack([ctc_window_log_score(lp, s) for s in sequences]).max(0).values


def repeat_log_prob(lp: torch.Tensor, seq: tuple[int, ...], lengths: torch.Tensor | None = None) -> torch.Tensor:
    """lp [T, N, V + 1] → [N] log of the probability that the frames (each example's first `lengths` of T) say `seq`
    with each phoneme as one *or more* spikes, blanks between (CTC's forward pass with one more edge: from the blank
    after a phoneme back to that phoneme). A long vowel often comes out of the head as two spikes — flite reads
    "keemee" /k iː iː m iː/, and the head hears a drawn-out vowel twice — which plain CTC can only pay for as
    blanks (attempts.md §48). −inf where no such path exists. The device's fixed-point pass adds the back edge's
    term last (hostside/graph.py: a ctc's pad_r)."""
    t_len, n = lp.shape[:2]
    dev = lp.device
    lengths = torch.full((n,), t_len, dtype=torch.long, device=dev) if lengths is None else \
        lengths.to(device=dev, dtype=torch.long)
    ext, skip, back = ctc_states(seq)
    s = len(ext)
    dtype, lp = lp.dtype, lp.to(torch.float64)
    neg = torch.tensor(-math.inf, dtype=torch.float64, device=dev)
    skip_m, back_m = torch.tensor(skip, device=dev), torch.tensor(back, device=dev)
    emit = lp[:, :, ext]                                          # [T, N, S]
    alpha = torch.full((n, s), -math.inf, dtype=torch.float64, device=dev)
    alpha[:, :2] = emit[0, :, :2]
    pad = torch.full((n, 2), -math.inf, dtype=torch.float64, device=dev)
    out = torch.full((n,), -math.inf, dtype=torch.float64, device=dev)
    for t in range(t_len):
        if t:
            one = torch.cat([pad[:, :1], alpha[:, :-1]], 1)
            two = torch.where(skip_m, torch.cat([pad, alpha[:, :-2]], 1), neg)
            up = torch.where(back_m, torch.cat([alpha[:, 1:], pad[:, :1]], 1), neg)
            alpha = torch.logsumexp(torch.stack([alpha, one, two, up]), 0) + emit[t]
        out = torch.where(lengths == t + 1, torch.logaddexp(alpha[:, -1], alpha[:, -2]), out)
    return out.to(dtype)


def min_frames(seq: tuple[int, ...]) -> int:
    """The fewest frames a CTC alignment of `seq` takes: one per phoneme and a blank between each pair of equal
    neighbours."""
    return len(seq) + sum(a == b for a, b in zip(seq, seq[1:]))


def anywhere_score(lp: torch.Tensor, seq: tuple[int, ...]) -> torch.Tensor:
    """lp [T, N, V + 1] → [N] exp(best log-probability of one CTC alignment of `seq` over a span of frames / len(seq)),
    the frames before and after the span free (Viterbi over the blank-interleaved states, entered from a free prefix
    and left into a free suffix)."""
    t_len, n = lp.shape[:2]
    ext, skip, _ = ctc_states(seq)
    states = len(ext)
    floor = -1e9
    skip = torch.tensor(skip)
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


def graph_posteriors(graph, out: np.ndarray, wake: int = 0, wake_score: bool = True) -> np.ndarray:
    """An integer graph's int8 outputs [N, out] → what the streaming detector reads, [N, classes]: the softmax of the
    dequantised class logits; after a ctc (`pqlr export --score phonemes`) the wake class's replaced by the score
    exp(log score), the board's `phonemes` score, unless wake_score is False (the classifier's alone)."""
    L = graph.output_layer
    k = graph.class_outputs
    zp, scale = (L.in2_zp, L.in2_scale) if L.op == "ctc" else (L.out_zp, L.out_scale)
    logits = (np.asarray(out[:, :k], np.float64) - zp) * scale
    post = np.exp(logits - logits.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    if L.op == "ctc" and wake_score:
        post[:, wake] = graph.wake_scores(out)
    return post.astype(np.float32)


class GraphPredictor:
    """A predict function (model ignored, features [N, T, F]) → [N, C] for hostside.evaluate: the integer graph run
    by the numpy reference (the board's integers), read by graph_posteriors. wake_score False: the classifier's
    posteriors alone, the wake class's not replaced by a ctc's score (what clip accuracy reads, as a checkpoint's
    clip accuracy is its classifier's). stream: the calls are the windows of
    streams (new_stream() begins one), their state carried as the board carries it — for a graph whose ctc reads a
    span (`pqlr export --span`); otherwise each window is scored alone, as a new stream."""

    def __init__(self, graph, stream: bool = False, wake_score: bool = True):
        self.graph = graph
        self.streaming = bool(stream and graph.streaming and not graph.frame_streaming)
        self.wake_score = wake_score
        from .graph import ctc_repeats
        self.repeats = graph.output_layer.op == "ctc" and ctc_repeats(graph.output_layer)   # recorded in eval.json
        self.state: dict = {}
        if self.streaming and graph.frontend:            # recorded in eval.json as a checkpoint's span is
            span = graph_span(graph, graph.frontend)
            self.span_s, self.history_s = span["span_s"], span["history_s"]     # history_s: evaluate.lead_windows

    def new_stream(self) -> None:
        self.state = {}

    def __call__(self, model, x: np.ndarray, batch: int | None = None) -> np.ndarray:
        from .reference import run_batch
        if len(x) == 0:
            return np.zeros((0, self.graph.class_outputs), np.float32)
        q = np.stack([self.graph.quantize_input(f) for f in x])
        out = run_batch(self.graph, q, chunk=batch, state=self.state if self.streaming else None)
        return graph_posteriors(self.graph, out, wake_score=self.wake_score)


def graph_span(graph, frontend: dict) -> dict | None:
    """The span a graph's ctc reads ({"span_s", "history_s", "stride_ms"}: the span, the audio before the window its
    score reads — the span's part before it and the Q blocks further back its blocks are kept from: what
    evaluate.lead_windows fills with the room — and the windows' stride it assumes), or None."""
    from .graph import ctc_offset, ctc_span, ctc_state_bytes
    L = graph.output_layer
    if not ctc_state_bytes(L):
        return None
    blocks, per, every = ctc_span(L)
    fe = FrontEnd.from_dict(frontend)
    period = fe.hop_length / fe.sample_rate * round(graph.input_shape[0] / L.in_shape[0])
    return {"span_s": round(fe.clip_samples / fe.sample_rate + blocks * per * period, 6),
            "history_s": round((blocks + ctc_offset(L)) * per * period, 6),
            "stride_ms": round(1000 * per * period / every, 6)}


def _window_s(ck: dict) -> float:
    """The checkpoint's window, in seconds."""
    fe = FrontEnd.from_dict(ck.get("frontend"))
    return fe.clip_samples / fe.sample_rate


SPAN_SHARE = 0.99          # `--span auto`: the span holds this share of the training wake phrases (docs/decisions.md)


def phrase_span(ck: dict, model, spoken_s, stride_ms: float = 100.0, share: float = SPAN_SHARE) -> float:
    """`--span auto`: the smallest span — the checkpoint's window plus whole blocks (PhonemeScorer.block) — that holds
    `share` of the phrases whose lengths (seconds) are `spoken_s`: the training wake phrases (Clip.spoken), read from
    training data, never from the test (attempts.md §33: 1.62 s on the demo's corpus → 1.8 s)."""
    from .train import nhwc
    spoken = np.asarray(spoken_s, np.float64)
    if not len(spoken):
        raise PqlrError("--span auto reads the training wake phrases' lengths, which this corpus does not record "
                        "(made before corpus format 4): give the span in seconds, e.g. --span 1.8, or synthesise it "
                        "again")
    ps = PhonemeScorer(ck, "phonemes", stride_ms=stride_ms)
    fe = FrontEnd.from_dict(ck.get("frontend"))
    with torch.no_grad(), nhwc(model.eval()):
        out_frames = ps.head(model.trunk(torch.zeros((1, *fe.shape)))).shape[0]
    _, _, block_s = ps.block(fe.n_frames, out_frames)
    need = float(np.quantile(spoken, share))
    blocks = max(0, math.ceil((need - ps.window_s) / block_s - 1e-9))
    return round(ps.window_s + blocks * block_s, 6)


def corpus_span(span_s, net, ck: dict, corpus_dir, stride_ms: float = 100.0) -> float | None:
    """span_s as given (seconds, or None: the window), or for "auto" the span phrase_span reads off the corpus's
    training wake phrases (Clip.spoken)."""
    if span_s != "auto":
        return None if span_s is None else float(span_s)
    from pathlib import Path
    from .data.corpus import load_corpus
    corpus = load_corpus(Path(corpus_dir))
    wake = ck["classes"][0]
    spoken = [c.spoken / 16000 for c in corpus.clips if c.split == "train" and c.label == wake and c.spoken > 0]
    return phrase_span(ck, net, spoken, stride_ms)


def detector_fn(ck: dict, kind: str, span_s: float | None = None, stride_ms: float = 100.0, best_span: bool = False,
                fuse: float = 0.0, span_from: str = "centre", repeats: bool = True):
    """What the streaming detector reads for a checkpoint `ck` and a wake score `kind` (SCORES): the classifier's
    posteriors (hostside.train.predict), or its PhonemeScorer (span_s: see there)."""
    from .train import predict
    if kind not in SCORES:
        raise PqlrError(f"--score {kind!r}: one of {', '.join(SCORES)}")
    if kind == "classifier":
        if span_s is not None and span_s > _window_s(ck) + 1e-9:
            raise PqlrError("--span: the classifier reads one window; a longer span is the `phonemes` score's")
        if fuse:
            raise PqlrError("--fuse weighs the classifier's posterior into a phoneme score: give --score phonemes")
        return predict
    return PhonemeScorer(ck, kind, span_s=span_s, stride_ms=stride_ms, best_span=best_span, fuse=fuse,
                         span_from=span_from, repeats=repeats)


class PhonemeScorer:
    """A predict function (model, features [N, T, F]) → [N, C] for hostside.evaluate: the classifier's posteriors,
    the wake class's replaced by the phoneme score `kind` (SCORES). Built from a checkpoint trained with the phoneme
    loss: its head and vocabulary, and the phoneme sequences of the wake class's training texts.

    span_s: how much audio the `phonemes` score reads. At the window (the default) each window is scored alone; a
    longer span is a streaming score: the windows of one stream (consecutive windows stride_ms apart, from
    new_stream() on) keep their head's first frames, and window i is scored over the frames that earlier windows saw
    before it began, then its own — a phrase longer than the window, or one the smoothing would see in too few
    windows, is still read whole (attempts.md §33). The earlier windows are those whose start lies a whole number
    of head frames before (every `block` windows); the span must be the window plus whole such blocks, and a
    stream's first windows read what the stream has so far. best_span: each window's best score over every span
    from the window up to span_s instead (measured no better: attempts.md §33). fuse: the wake score is
    classifier^fuse × phoneme score^(1 − fuse), the classifier's wake posterior of the window weighed in (0: the
    phoneme score alone; attempts.md §36). span_from: which frames of an earlier window a block is read from —
    "centre" (the protocol since 2026-12-07): the block at the centre of a window Q blocks older than the block's
    own, whose frames the trunk computed with audio on both sides; "first": a window's first frames, which the trunk
    computed with nothing before them (zero padding), as training never shows it a phrase — a phrase longer than
    about 0.8 s, read mostly from such frames, was missed two to three times as often (attempts.md §47). repeats
    (the protocol since 2026-12-07, `pqlr eval --phoneme-repeats yes`): each phoneme of the phrase may be one or more
    spikes with blanks between (repeat_log_prob: a long vowel heard twice), not exactly one (attempts.md §48)."""

    def __init__(self, ck: dict, kind: str = "phonemes", wake: int = 0, span_s: float | None = None,
                 stride_ms: float = 100.0, best_span: bool = False, fuse: float = 0.0, span_from: str = "centre",
                 repeats: bool = True):
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
        self.repeats = bool(repeats) and kind == "phonemes"
        self.score = (lambda lp, s: ctc_window_score(lp, s, repeats=self.repeats)) if kind == "phonemes" else \
            anywhere_score
        fe = FrontEnd.from_dict(ck.get("frontend"))
        self.window_s = _window_s(ck)
        self.hop_s = fe.hop_length / fe.sample_rate
        self.stride_s = stride_ms / 1000
        self.span_s = self.window_s if span_s is None else float(span_s)
        self.best_span = best_span
        if not 0.0 <= fuse < 1.0:
            raise PqlrError(f"--fuse {fuse:g}: the classifier's weight in the wake score, in [0, 1)")
        self.fuse = float(fuse)
        if self.span_s < self.window_s - 1e-9:
            raise PqlrError(f"--span {self.span_s:g} s: at least the window ({self.window_s:g} s)")
        if self.span_s > self.window_s + 1e-9 and kind != "phonemes":
            raise PqlrError(f"--span: the {kind} score reads one window; a longer span is the `phonemes` score's")
        if span_from not in SPAN_FROM:
            raise PqlrError(f"--span-from {span_from!r}: one of {', '.join(SPAN_FROM)}")
        self.span_from = span_from
        self.offset_blocks, self._offset_s = 0, 0.0         # Q, and the audio it reads further back (span_from)
        self._in_frames = fe.n_frames
        if self.streaming and span_from == "centre":
            self.offset_blocks = None                         # known from the head's frames a window (_offset)
            if "config" in ck:                                # the checkpoint's model says how many, before any call
                from .train import model_from_config
                net = model_from_config(ck.get("kind", "dscnn"), ck["config"]).eval()
                with torch.no_grad():
                    self._offset(self.head(net.trunk(torch.zeros((1, *fe.shape)))).shape[0])
        self.new_stream()

    def _offset(self, out_frames: int) -> int:
        """Q for a window of out_frames head frames (span_from "centre": centre_offset), fixed at its first reading."""
        if self.offset_blocks is None:
            _, per, block_s = self.block(self._in_frames, out_frames)
            self.offset_blocks = centre_offset(out_frames, per)
            self._offset_s = self.offset_blocks * block_s
        return self.offset_blocks

    @property
    def streaming(self) -> bool:
        return self.span_s > self.window_s + 1e-9

    @property
    def history_s(self) -> float:
        """The audio before its window a window's score reads (evaluate.lead_windows): the span's part before the
        window, and the Q blocks further back its earlier blocks are read from (span_from "centre")."""
        return max(0.0, self.span_s - self.window_s) + self._offset_s

    def new_stream(self) -> None:
        """The windows that follow begin a new stream: nothing before them is read."""
        self._history = None

    def block(self, in_frames: int, out_frames: int) -> tuple[int, int, float]:
        """(windows per block, head frames per block, the block in seconds): the earlier windows a span reads start
        a whole number of head frames before (every `windows` windows)."""
        period = self.hop_s * round(in_frames / out_frames)          # one head frame, in seconds
        per = self.stride_s / period
        windows = next((w for w in range(1, 101) if abs(w * per - round(w * per)) < 1e-6), None)
        if windows is None:
            raise PqlrError(f"a {1000 * self.stride_s:g} ms stride is no whole number of the head's "
                            f"{1000 * period:g} ms frames in 100 windows: a longer span needs a stride that is")
        return windows, int(round(windows * per)), windows * self.stride_s

    def _blocks(self, in_frames: int, out_frames: int) -> tuple[int, int, int]:
        """(blocks before the window, windows per block, head frames per block) for the span."""
        windows, frames, block_s = self.block(in_frames, out_frames)
        extra = (self.span_s - self.window_s) / block_s
        if abs(extra - round(extra)) > 1e-6:
            raise PqlrError(f"--span {self.span_s:g} s: the window ({self.window_s:g} s) and whole blocks of "
                            f"{block_s:g} s (e.g. {self.window_s + block_s:g} or {self.window_s + 4 * block_s:g})")
        return int(round(extra)), windows, frames

    def span_fields(self, in_frames: int, out_frames: int) -> tuple[int, int, int, int]:
        """(blocks read before the window, windows per block, head frames per block, Q: blocks into a kept window
        where a block's frames start) of this span for a window of in_frames feature frames and out_frames head
        frames: what `pqlr export --span` puts in the ctc op (export/ptq.py phoneme_branch); (0, 1, 1, 0) at the
        window."""
        return (*self._blocks(in_frames, out_frames), self._offset(out_frames)) if self.streaming else (0, 1, 1, 0)

    @torch.no_grad()
    def __call__(self, model, x: np.ndarray, batch: int = 512) -> np.ndarray:
        from .train import nhwc
        model.eval()
        out, frames, classifier = [], [], []
        with nhwc(model):
            for i in range(0, len(x), batch):
                maps = model.trunk(torch.from_numpy(np.ascontiguousarray(x[i: i + batch], dtype=np.float32)))
                post = torch.softmax(model.head(maps), dim=1)
                classifier.append(post[:, self.wake].clone())
                lp = self.head(maps)
                if self.streaming:
                    frames.append(lp.transpose(0, 1))                  # [N, T', V + 1], scored below
                else:
                    post[:, self.wake] = torch.stack([self.score(lp, s) for s in self.sequences]).max(0).values
                out.append(post)
        if not out:
            return np.zeros((0, 0), np.float32)
        post = torch.cat(out)
        if self.streaming:
            post[:, self.wake] = self._span_scores(torch.cat(frames), x.shape[1], batch)
        if self.fuse:
            cls = torch.cat(classifier)
            post[:, self.wake] = cls ** self.fuse * post[:, self.wake] ** (1 - self.fuse)
        return post.numpy()

    def _span_scores(self, lp: torch.Tensor, in_frames: int, batch: int) -> torch.Tensor:
        """lp [N, T', V + 1]: this call's windows, after the stream's earlier ones → [N] the span's scores."""
        n, t_out, v = lp.shape
        extra, every, f = self._blocks(in_frames, t_out)
        q = self._offset(t_out)
        keep = (extra + q) * every                                # earlier windows a window may read
        past = self._history if self._history is not None else lp.new_zeros((0, f, v))
        kept = torch.cat([past, lp[:, q * f:(q + 1) * f]])        # every window's block Q (the past's first)
        h = len(past)
        scores = []
        for i0 in range(0, n, batch):
            idx = torch.arange(i0, min(n, i0 + batch))
            g = idx + h                                           # index in kept
            best = None
            for m in (range(extra + 1) if self.best_span else (extra,)):
                have = torch.clamp(g // every - q, min=0, max=m)  # blocks this window can read
                span = torch.cat([kept[torch.clamp(g - (k + q) * every, min=0)] for k in range(m, 0, -1)]
                                 + [lp[idx]], 1)
                for r in torch.nonzero(have < m).flatten().tolist():       # a stream's first windows: what it has
                    short = m - int(have[r])
                    span[r] = torch.cat([span[r, short * f:], span.new_zeros((short * f, v))])
                got = torch.stack([ctc_window_score(span.transpose(0, 1), s, have * f + t_out, self.repeats)
                                   for s in self.sequences]).max(0).values
                best = got if best is None else torch.maximum(best, got)
            scores.append(best)
        self._history = kept[-keep:] if keep else None
        return torch.cat(scores)


def centre_offset(out_frames: int, per: int) -> int:
    """Q for span_from "centre": the block (of `per` head frames) at the centre of a window of out_frames head frames,
    counted from its start (of 5 blocks the third: Q = 2); the frames farthest from both of the window's edges."""
    return max(0, (out_frames // per - 1) // 2)
