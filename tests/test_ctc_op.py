"""The wake word's phoneme score on the device path: the PTQ export's phoneme branch (the trunk's maps read again
after the classifier, src), the ctc op's fixed point against torch's CTC, model.bin's new fields and their checks,
the planner keeping the branch's tensors alive, and the firmware's kernel bit for bit with the reference (host
build with both kernel sets; QEMU's RV32IMAC board)."""
import dataclasses
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from hostside.artifact import (LAYER_FIELDS, LAYER_FMT, LAYER_OFFSETS, LAYER_SIZE, TILE_CRC_OFFSET, TILE_SIZE,
                               read_model_bin, write_model_bin)
from hostside.boards import load_board
from hostside.errors import ArtifactError
from hostside.export.ptq import WAKE_SCORE_ZP, quantize_ptq
from hostside.graph import (CTC_BITS, CTC_MAX_FRAMES, CTC_MAX_STATES, CTC_NEG, CTC_TABLE, ctc_sequences, ctc_state_bytes,
                            ctc_table, requantize)
from hostside.keyword import ctc_window_score, repeat_log_prob
from hostside.plan import make_plan
from hostside.reference import run, run_batch
from hostside.reference.interpreter import Streamer, ctc_log_scores
from hostside.tiles import params_bytes
from hostside.train import PhonemeHead

from conftest import random_graph, run_firmware
from test_properties import _fix_checksums

SEQS = [(3, 1, 4, 2), (3, 1, 1, 4), (5,)]        # a repeated phoneme (1, 1: CTC needs a blank between) and a short one


def phoneme_graph(seed: int = 0, sequences=SEQS, vocab: int = 6, n: int = 24, gain: float = 100.0, span=None,
                  repeats: bool = False):
    """A random DS-CNN quantised by the real PTQ path with a random phoneme head: (graph, plain graph, calib).
    span: (blocks, windows per block, head frames per block) for the ctc to read (export/ptq.py phoneme_branch);
    repeats: its phonemes may repeat (pad_r)."""
    m, plain, calib = random_graph(seed, input_shape=(20, 12), channels=9, blocks=2, stem_kernel=(4, 3),
                                   stem_stride=(2, 2), calib_n=n)
    torch.manual_seed(seed)
    head = PhonemeHead(9, vocab)
    with torch.no_grad():
        head.proj.weight.mul_(gain)                # a random trunk's maps vary little: the head magnifies them
    g = quantize_ptq(m, calib, plain.classes, None, {"head": head, "sequences": sequences,
                                                     "span": (lambda i, o: span) if span else None,
                                                     "repeats": repeats})
    return g, plain, calib


def with_span(g, blocks: int, every: int, per: int, offset: int = 0):
    """The graph with its ctc reading `blocks` blocks of `per` head frames, `every` windows apart, each from the frames
    `offset` blocks into a kept window (graph.py)."""
    L = g.layers[-1]
    L.kernel, L.stride, L.pad = (per, 1), (every, 1), (blocks * per, 0, offset * per, 0)
    return g


def stepped(g, xs):
    """The reference's outputs for xs as consecutive windows of one stream (the board's order)."""
    s = Streamer(g)
    return np.stack([s.step(x) for x in xs]).astype(np.int64)


def ctc_graph(seed: int, frames: int = 12, vocab: int = 6, sequences=SEQS, scale: float = 0.08):
    """The ctc op alone on random int8 logits (frames × 1 × vocab + blank); its second operand is the input itself
    (copied before the score). Returns (graph, inputs): 64 inputs, each frame peaked on one class: in half of them
    the frames spell one of the sequences (blanks between, a few frames changed at random), in the rest at random."""
    from hostside.graph import IntGraph, Layer, quantize_multiplier
    rng = np.random.default_rng(seed)
    v = vocab + 1
    row = list(ctc_table()) + [x for q in sequences for x in (len(q), *q)]
    row += [0] * (1 + (-len(row) - 1) % 4)
    m2, s2 = quantize_multiplier(scale * 2**CTC_BITS)
    L = Layer("ctc", "ctc", (frames, 1, v), (1, 1, frames * v + 1), -3, WAKE_SCORE_ZP, -128, 127, scale,
              2.0**-CTC_BITS, np.array([1 << 30], np.int32), np.array([30], np.int32),
              weights=np.array([row], np.int8), skip=0, in2_zp=-3, in2_scale=scale, m2=m2, s2=s2)
    g = IntGraph(input_shape=(frames, 1, v), input_scale=scale, input_zp=-3, layers=[L])
    x = rng.integers(-128, 40, size=(64, frames, 1, v))
    peak = rng.integers(0, v, size=(64, frames))
    for k in range(0, 64, 2):
        q = sequences[k // 2 % len(sequences)]
        if 2 * len(q) + 1 <= frames:
            cuts = np.sort(rng.choice(np.arange(1, frames), size=2 * len(q), replace=False))
            path = np.repeat([0, *[x for p in q for x in (p, 0)]], np.diff([0, *cuts, frames]))
            noisy = rng.random(frames) < 0.15
            peak[k] = np.where(noisy, peak[k], path)
    np.put_along_axis(x, peak[:, :, None, None], rng.integers(40, 128, size=(64, frames, 1, 1)), axis=3)
    return g, x.astype(np.int8)


def test_branch_keeps_the_classifier_and_appends_the_score():
    g, plain, calib = phoneme_graph(1)
    assert [L.op for L in g.layers[-3:]] == ["avgpool", "pwconv2d", "ctc"] and g.layers[-3].out_shape[1] == 1
    pool = next(i for i, L in enumerate(g.layers) if L.op == "avgpool")
    assert g.layers[-3].src == pool and g.layers[-1].skip == len(plain.layers)
    xs = np.stack([g.quantize_input(f) for f in calib])
    out, want = run_batch(g, xs), run_batch(plain, xs)
    assert out.shape[1] == want.shape[1] + 1 and np.array_equal(out[:, :-1], want)    # the classifier unchanged
    assert len(np.unique(out[:, -1])) >= 3                                             # the score varies


@pytest.mark.parametrize("repeats", [False, True])
def test_ctc_fixed_point_follows_torch_ctc(repeats):
    """The op's integer score on random peaked int8 logits against torch's CTC on the same logits dequantised
    (keyword.ctc_window_score, the fp32 detector's score; with pad_r = 1 its repeats topology,
    keyword.repeat_log_prob): for every sequence alone, on every input it can align to, within 2^-CTC_BITS nats per
    frame (the rounding of each frame's normaliser), per phoneme; the op's output is the best sequence's."""
    g, xs = ctc_graph(2)
    L = g.layers[-1]
    L.pad = (0, 0, 0, int(repeats))
    z = xs.reshape(len(xs), L.in_shape[0], L.in_shape[2])
    lp = torch.log_softmax(torch.from_numpy((z.astype(np.float64) - L.in_zp) * L.in_scale), dim=2).transpose(0, 1)
    per = []
    for q in SEQS:
        row = list(ctc_table()) + [len(q), *q, 0]
        one = dataclasses.replace(L, weights=np.array([row + [0] * (-len(row) % 4)], np.int8))
        got = ctc_log_scores(z, one)
        want = torch.log(ctc_window_score(lp, q, repeats=repeats)).numpy()
        if repeats:
            assert np.allclose(want, repeat_log_prob(lp, q).numpy() / len(q))
        reachable = want > -30
        bound = L.in_shape[0] / 2.0**CTC_BITS / len(q)        # one unit of the log domain per frame, per phoneme
        assert reachable.sum() >= 8 and np.abs(got / 2.0**CTC_BITS - want)[reachable].max() < bound, q
        per.append(got)
    out = run_batch(g, xs)
    assert np.array_equal(out[:, :-1], xs.reshape(len(xs), -1))                          # the second operand, copied
    assert np.array_equal(out[:, -1].astype(np.int64), np.clip(np.max(per, axis=0) + WAKE_SCORE_ZP, -128, 127))
    assert len(np.unique(out[:, -1])) > 10


def test_ctc_rules():
    """Hand-made logits: a frame sequence that spells the phrase scores near 0 nats; the phrase out of order, or too
    few frames for a repeated phoneme and its blank, score far lower."""
    from hostside.graph import Layer, quantize_multiplier
    m2, s2 = quantize_multiplier(0.5 * 2**CTC_BITS)
    row = list(ctc_table()) + [3, 1, 1, 2, 0]
    row += [0] * (-len(row) % 4)
    L = Layer("c", "ctc", (4, 1, 3), (1, 1, 2), 0, WAKE_SCORE_ZP, -128, 127, 0.5, 2.0**-CTC_BITS,
              np.array([1 << 30], np.int32), np.array([30], np.int32), weights=np.array([row], np.int8), m2=m2, s2=s2)
    assert ctc_sequences(L) == [(1, 1, 2)]

    def frames(*ids):
        z = np.full((1, len(ids), 3), -100, np.int64)
        for t, i in enumerate(ids):
            z[0, t, i] = 100
        return z
    good = ctc_log_scores(frames(1, 0, 1, 2), L)[0]
    assert -2**CTC_BITS * 0.01 < good <= 0
    assert ctc_log_scores(frames(2, 0, 1, 1), L)[0] < -2**CTC_BITS * 10               # out of order
    short = dataclasses.replace(L, in_shape=(3, 1, 3))
    assert ctc_log_scores(frames(1, 1, 2), short)[0] < CTC_NEG // 4                     # 1 1 needs a blank between
    # a phoneme said as two spikes with a blank between: plain CTC cannot explain the extra spike, repeats can
    one = dataclasses.replace(L, in_shape=(6, 1, 3), weights=np.array([list(ctc_table()) + [2, 1, 2, 0]
                                                                        + [0] * (-(CTC_TABLE + 4) % 4)], np.int8))
    twice = frames(1, 0, 1, 0, 2, 0)
    assert ctc_log_scores(twice, one)[0] < -2**CTC_BITS * 10
    rep = dataclasses.replace(one, pad=(0, 0, 0, 1))
    assert -2**CTC_BITS * 0.01 < ctc_log_scores(twice, rep)[0] <= 0
    assert ctc_log_scores(frames(1, 0, 1, 0, 2, 0), rep)[0] == ctc_log_scores(frames(1, 0, 0, 0, 2, 0), rep)[0]
    assert ctc_log_scores(frames(2, 0, 1, 0, 1, 0), rep)[0] < -2**CTC_BITS * 10         # still in order
    # (1, 1, 2) with repeats: "1 0 1 0 1 2" is three 1s, which the sequence with its equal neighbours allows once
    assert -2**CTC_BITS * 0.01 < ctc_log_scores(frames(1, 0, 1, 0, 1, 2), dataclasses.replace(
        L, in_shape=(6, 1, 3), pad=(0, 0, 0, 1)))[0] <= 0


@pytest.mark.parametrize("seq", [(1, 2), (1, 2, 1), (3, 1, 2), (1, 1), (2, 1, 1, 2)])
def test_repeat_score_is_the_sum_over_its_paths(seq):
    """keyword.repeat_log_prob by its definition: the log of the summed probability of every frame labelling (7
    frames, 3 phonemes and blank) that collapses, as CTC collapses — repeated labels merged, blanks removed — to the
    sequence with each phoneme said one or more times (a regular expression); each such labelling counted once,
    equal neighbours (1, 1) included; and for a window too short, or a labelling no path explains, −inf."""
    import itertools
    import math
    torch.manual_seed(len(seq))
    lp = torch.log_softmax(torch.randn(7, 2, 4, dtype=torch.float64) * 2, -1)
    pattern = re.compile("".join(f"(?:{p})+" for p in seq) + "$")
    want = [-math.inf, -math.inf]
    for path in itertools.product(range(4), repeat=7):
        said = "".join(str(a) for a, b in zip(path, (None,) + path) if a != b and a != 0)
        if pattern.match(said):
            for n in range(2):
                want[n] = np.logaddexp(want[n], float(sum(lp[t, n, path[t]] for t in range(7))))
    got = repeat_log_prob(lp, seq).numpy()
    assert np.allclose(got, want, atol=1e-9)
    plain = -torch.nn.functional.ctc_loss(lp, torch.tensor([seq, seq]), torch.tensor([7, 7]),
                                          torch.tensor([len(seq)] * 2), reduction="none").numpy()
    assert (got > plain + 1e-6).all()                                     # more paths, more probability
    assert np.isneginf(repeat_log_prob(lp, seq, torch.tensor([len(seq) - 1, 7])).numpy()[0])


@pytest.mark.parametrize("q", [0, 1, 2])
def test_span_reference_reads_the_earlier_windows_kept_frames(q):
    """A ctc with a span (3 blocks of 3 head frames, a block every 2 windows, each read Q blocks into a window 2·Q
    windows older than its own: Q = 0 a window's first frames, Q = 1 and 2 further in): window j of a stream is scored
    over frames 3Q … 3Q + 2 of windows j − 6 − 2Q, j − 4 − 2Q, j − 2 − 2Q (as many as the stream has), then its own
    12, exactly as ctc_log_scores of those frames; stepping, and run_batch with the state carried over uneven chunks,
    agree through the count's wrap (40 windows, K = 6 + 2Q); without state each input is a new stream (its window
    alone); the state is the board's bytes (ctc_state_bytes)."""
    g, xs = ctc_graph(8, frames=12, vocab=6)
    L = with_span(g, 3, 2, 3, q).layers[0]
    k_ring = 6 + 2 * q
    assert g.streaming and not g.frame_streaming and ctc_state_bytes(L) == 4 + k_ring * 3 * 7
    xs = np.concatenate([xs, xs[::-1]])[:40]
    steps = stepped(g, xs)
    z = xs.reshape(len(xs), 12, 7)
    for j in range(len(xs)):
        have = min(max(j // 2 - q, 0), 3)
        frames = np.concatenate([z[j - 2 * (k + q), 3 * q: 3 * q + 3] for k in range(have, 0, -1)] + [z[j]])
        want = requantize(ctc_log_scores(frames[None], L), L.multiplier[0], L.shift[0], L.out_zp, L.act_min,
                          L.act_max)
        assert steps[j, -1] == want[0], j
        assert np.array_equal(steps[j, :-1], xs[j].reshape(-1))           # the second operand copied unchanged
    state: dict = {}
    chunks = [run_batch(g, xs[a:b], chunk=5, state=state) for a, b in ((0, 1), (1, 8), (8, 23), (23, 40))]
    assert np.array_equal(np.concatenate(chunks), steps)
    s = Streamer(g)
    for x in xs:
        s.step(x)
    assert np.array_equal(s.state[0], state[0]) and state[0].dtype == np.uint8 and state[0].size == ctc_state_bytes(L)
    c = int(state[0][:4].view("<u4")[0])
    assert k_ring <= c < 2 * k_ring and c % k_ring == 40 % k_ring           # wrapped from 2K − 1 to K
    fresh = run_batch(g, xs)
    assert np.array_equal(fresh, np.stack([run(g, x) for x in xs]))
    assert np.array_equal(fresh[:2], steps[:2]) and (fresh[:, -1] != steps[:, -1]).any()


@pytest.mark.parametrize("q", [0, 1])
@pytest.mark.parametrize("repeats", [False, True])
def test_span_export_follows_the_float_span_score(q, repeats):
    """The PTQ export of a DS-CNN with its phoneme branch reading a span, stepped over consecutive windows: its integer
    score follows what PhonemeScorer's own span rule (keyword.py) computes from the same head logits in float, and
    the span's fields are those PhonemeScorer.span_fields gives (2 blocks of 5 head frames, 2 windows a block: a
    100 ms stride over 40 ms head frames; each block read from a window's first frames, Q = 0, or Q = 1 block in);
    with the scorer's repeats the ctc's pad_r is 1 and the integer score follows the float repeats score."""
    from hostside.keyword import PhonemeScorer
    ps = PhonemeScorer.__new__(PhonemeScorer)               # the scorer's span rule without a trained checkpoint
    ps.sequences, ps.best_span, ps.hop_s, ps.stride_s, ps.window_s, ps.span_s = SEQS, False, 0.02, 0.1, 0.4, 0.8
    ps.offset_blocks, ps._offset_s, ps.repeats = q, q * 0.2, repeats
    ps.new_stream()
    g, _, calib = phoneme_graph(2, span=ps.span_fields(20, 10), repeats=repeats)
    ctc = g.layers[-1]
    assert (ctc.kernel, ctc.stride, ctc.pad) == ((5, 1), (2, 1), (10, 0, 5 * q, int(repeats))) and g.streaming
    xs = np.stack([g.quantize_input(f) for f in calib])
    out = stepped(g, xs)
    t, v = ctc.in_shape[0], ctc.in_shape[2]
    z = np.stack([run(g, x, dump=True)[1][-2].reshape(t, v) for x in xs])          # the head's int8 logits
    lp = torch.log_softmax(torch.from_numpy((z.astype(np.float64) - ctc.in_zp) * ctc.in_scale), dim=2)
    want = np.log(np.concatenate([ps._span_scores(lp[:9], 20, 4).numpy(), ps._span_scores(lp[9:], 20, 4).numpy()]))
    got = (out[:, -1] - WAKE_SCORE_ZP) * 2.0**-CTC_BITS
    assert np.abs(got - np.clip(want, -255 / 2**CTC_BITS, 0)).max() < 0.1
    alone = (run_batch(g, xs)[:, -1] - WAKE_SCORE_ZP) * 2.0**-CTC_BITS           # each window a new stream
    assert np.abs(alone - got)[4:].max() > 0.1                                   # the span is read


def test_plan_keeps_the_maps_for_the_branch(tmp_path):
    """The global pool may not overwrite the trunk's maps (the branch reads them after it), nor the classifier's
    logits be overwritten before the ctc copies them; the branch's first layer is never in place; model.bin
    round-trips the graph."""
    g, _, calib = phoneme_graph(3)
    plan = make_plan(g, load_board("rv32-virt"))
    pool = next(i for i, L in enumerate(g.layers) if L.op == "avgpool")
    last = g.last_use()
    assert last[pool] == len(g.layers) - 3 and last[len(g.layers) - 3] == len(g.layers) - 1
    assert not plan.inplace[pool] and not plan.inplace[-3] and not plan.inplace[-1]
    art = write_model_bin(tmp_path / "m.bin", g, plan)
    xs = np.stack([g.quantize_input(f) for f in calib[:6]])
    assert np.array_equal(run_batch(art.graph, xs), run_batch(g, xs))
    assert art.graph.layers[-3].src == pool and art.graph.layers[-1].skip == g.layers[-1].skip


def _reseal_last_tile(b: bytearray, art) -> bytearray:
    """The last tile's CRC made to match its (changed) bytes again."""
    t = art.tiles[-1]
    at = struct.unpack_from("<I", b, 60)[0] + (len(art.tiles) - 1) * TILE_SIZE + TILE_CRC_OFFSET
    start = art.weights_offset + t.offset
    struct.pack_into("<I", b, at, zlib.crc32(bytes(b[start: start + t.size])))
    return b


def _entry(b: bytearray, i: int) -> int:
    return struct.unpack_from("<I", b, 52)[0] + i * LAYER_SIZE


@pytest.mark.parametrize("what", ["src_forward", "src_elsewhere", "table", "phoneme", "unended", "span_blocks",
                                  "span_frames", "span_offset", "span_offset_whole", "repeats_flag",
                                  "state_over_maps"])
def test_reader_refuses_a_bad_branch(tmp_path, what):
    """With valid checksums, model.bin's reader refuses a branch that reads a later tensor or reads it where it does
    not live, a changed logadd table, a phoneme outside the head's vocabulary, a sequence list without its end, a span
    that is no whole number of blocks or longer than the op can read, a block read from beyond its window's frames or
    not a whole number of blocks into it, a repeats field (pad_r) other than 0 or 1, and a ctc's state placed over a
    tensor that an earlier op uses (the state persists between inferences: no op may write over it)."""
    g, _, _ = phoneme_graph(4, span=(2, 2, 3, 1), repeats=True)
    art = write_model_bin(tmp_path / "m.bin", g, make_plan(g, load_board("rv32-virt"), mode="xip"))
    b = bytearray((tmp_path / "m.bin").read_bytes())
    n = len(g.layers)
    e = _entry(b, n - 3)
    tile = art.tiles[-1]
    row = art.weights_offset + tile.offset + params_bytes(1)          # after the one row's bias, multiplier, shift
    if what == "src_forward":
        struct.pack_into("<h", b, e + LAYER_OFFSETS["src"], n - 2)
        match = "not an earlier"
    elif what == "src_elsewhere":
        src = g.layers[n - 3].src
        size = int(np.prod(g.layers[n - 3].in_shape))
        struct.pack_into("<I", b, e + LAYER_OFFSETS["t_in"], next(o for o in range(0, art.arena_bytes - size + 1, 4)
                                                                 if o != art.tensor_offsets[src]))
        match = "lives at"
    elif what == "table":
        b[row + 5] += 1
        match = "logadd table"
    elif what == "phoneme":
        b[row + CTC_TABLE + 1] = g.layers[-1].in_shape[2]
        match = "phonemes in"
    elif what == "span_blocks":
        struct.pack_into("<H", b, _entry(b, n - 1) + LAYER_OFFSETS["pad_t"], 7)
        match = "span fields"
    elif what == "span_frames":
        struct.pack_into("<H", b, _entry(b, n - 1) + LAYER_OFFSETS["kh"], 1)
        struct.pack_into("<H", b, _entry(b, n - 1) + LAYER_OFFSETS["pad_t"], CTC_MAX_FRAMES)
        match = "span fields"
    elif what == "span_offset":
        struct.pack_into("<H", b, _entry(b, n - 1) + LAYER_OFFSETS["pad_b"], 4)          # not a whole block in
        match = "span fields"
    elif what == "span_offset_whole":                                                  # past the window's frames
        t = g.layers[-1].in_shape[0]
        struct.pack_into("<H", b, _entry(b, n - 1) + LAYER_OFFSETS["pad_b"], 3 * (t // 3))
        match = "span fields"
    elif what == "repeats_flag":
        assert read_model_bin(tmp_path / "m.bin").graph.layers[-1].pad[3] == 1           # round-trips as written
        struct.pack_into("<H", b, _entry(b, n - 1) + LAYER_OFFSETS["pad_r"], 2)
        match = "span fields"
    elif what == "state_over_maps":                 # the trunk's first output: dead by the ctc, live at op 0
        struct.pack_into("<I", b, _entry(b, n - 1) + LAYER_OFFSETS["scratch"], art.tensor_offsets[1])
        match = "overlap"
    else:
        rest = tile.size - params_bytes(1) - CTC_TABLE
        b[row + CTC_TABLE: row + CTC_TABLE + rest] = bytes([1, 2]) * (rest // 2)
        match = "malformed keyword sequences"
    if what in ("table", "phoneme", "unended"):               # the tile's own CRC too
        _reseal_last_tile(b, art)
    with pytest.raises(ArtifactError, match=match):
        read_model_bin(_fix_checksums(b))


def test_export_refuses_a_sequence_the_device_cannot_hold():
    m, plain, calib = random_graph(5, input_shape=(20, 12), channels=9, blocks=2, stem_kernel=(4, 3),
                                   stem_stride=(2, 2))
    with pytest.raises(ValueError, match="1–32 phoneme"):
        quantize_ptq(m, calib, plain.classes, None, {"head": PhonemeHead(9, 4), "sequences": [(1, 7)]})
    with pytest.raises(ValueError, match="1–32 phoneme"):
        quantize_ptq(m, calib, plain.classes, None, {"head": PhonemeHead(9, 4), "sequences": [(1,) * 33]})


def test_firmware_constants_match_the_specification():
    h = (Path(__file__).resolve().parents[1] / "firmware_templates/core/pqlr.h").read_text()
    consts = dict(re.findall(r"#define (PQLR_CTC_\w+) \(?([-\d() <]+?)\)?\s+/\*", h))
    assert int(consts["PQLR_CTC_TABLE"]) == CTC_TABLE
    assert int(consts["PQLR_CTC_MAX_STATES"]) == CTC_MAX_STATES
    assert eval(consts["PQLR_CTC_NEG"]) == CTC_NEG
    assert "PQLR_OP_CTC = 17" in h and "src" in LAYER_FIELDS and struct.calcsize(LAYER_FMT) == LAYER_SIZE


def pool_graph(seed: int):
    """An average pool over windows (12 × 6 × 5 → 4 × 3 × 5, windows of 3 × 2) and the global pool after it."""
    from hostside.graph import IntGraph, Layer, quantize_multiplier
    m, s = quantize_multiplier(1 / 6)
    mg, sg = quantize_multiplier(1 / 12)
    layers = [Layer("win", "avgpool", (12, 6, 5), (4, 3, 5), 3, -2, -128, 127, 0.1, 0.1, np.array([m], np.int32),
                    np.array([s], np.int32)),
              Layer("glob", "avgpool", (4, 3, 5), (1, 1, 5), -2, 1, -128, 127, 0.1, 0.1, np.array([mg], np.int32),
                    np.array([sg], np.int32))]
    g = IntGraph(input_shape=(12, 6, 5), input_scale=0.1, input_zp=3, layers=layers)
    return g, np.random.default_rng(seed).integers(-128, 128, size=(16, 12, 6, 5)).astype(np.int8)


def test_windowed_average_pool():
    """Each 3 × 2 window summed (the graph's requantisation rule after it), window by window; in place is legal."""
    from hostside.graph import requantize
    g, xs = pool_graph(0)
    L = g.layers[0]
    sums = np.zeros((16, 4, 3, 5), np.int64)
    for oy in range(4):
        for ox in range(3):
            sums[:, oy, ox] = (xs[:, 3 * oy: 3 * oy + 3, 2 * ox: 2 * ox + 2].astype(np.int64) - 3).sum(axis=(1, 2))
    want = requantize(sums, L.multiplier[0], L.shift[0], -2, -128, 127)
    assert np.array_equal(run_batch(dataclasses.replace(g, layers=g.layers[:1]), xs), want.reshape(16, -1))
    plan = make_plan(g, load_board("rv32-virt"))
    assert plan.inplace[0]                                   # window by window, channel by channel: in place is safe


@pytest.mark.parametrize("kernels", ["ref", "rv32"])
@pytest.mark.parametrize("which", ["branch", "ctc", "ctc_repeats", "pool", "span", "span_repeats"])
def test_host_firmware_bit_exact(tmp_path, kernels, which):
    """Both kernel sets, built for the host, against the reference on every input (and layer by layer where
    they differ): the phoneme branch in a tiled plan with small tiles, the ctc op alone on random logits, an
    average pool over windows run in place, and the ctc reading a span (3 blocks of 4 frames, 3 windows a block, each
    read one block into its window: its ring wraps several times over 64 windows of one stream); the ctc alone and
    over a span also with its phonemes allowed to repeat (pad_r = 1), whose scores must differ from plain CTC's."""
    if which == "branch":
        g, _, calib = phoneme_graph(6)
        xs = np.stack([g.quantize_input(f) for f in calib[:12]])
    elif which == "pool":
        g, xs = pool_graph(1)
    elif which.startswith("span"):         # softer logits with repeats: more windows above the floor
        g, xs = ctc_graph(8, frames=12, vocab=6, scale=0.015 if which == "span_repeats" else 0.08)
        with_span(g, 3, 3, 4, offset=1)
    elif which == "ctc_repeats":
        g, xs = ctc_graph(9, frames=16, vocab=6)
    else:
        g, xs = ctc_graph(8, frames=30, vocab=9, sequences=[(1, 2, 3, 4, 5), (9, 9, 9), (2,) * 32])
    if which.endswith("repeats"):
        plain_scores = (stepped(g, xs) if which.startswith("span") else run_batch(g, xs))[:, -1]
        L = g.layers[-1]
        L.pad = (*L.pad[:3], 1)
        assert ((stepped(g, xs) if which.startswith("span") else run_batch(g, xs))[:, -1] != plain_scores).sum() >= 8
    board = dataclasses.replace(load_board("host"), tile_buffer_budget_bytes=1024)
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    res = run_firmware(art, board, g, xs, tmp_path, kernels=kernels, timeout=30)
    assert res.first_mismatch is None
    want = stepped(g, xs) if which.startswith("span") else run_batch(g, xs).astype(np.int64)
    assert np.array_equal(np.array(res.outputs), want)
    if which.startswith("span"):
        assert (want[:, -1] != run_batch(g, xs)[:, -1]).sum() >= 8     # not the window's score


@pytest.mark.emulator
def test_qemu_phoneme_score_bit_exact(tmp_path):
    """The DS-CNN with its phoneme branch on the emulated RV32IMAC board (UART on a pty read with pyserial), tuned
    kernels, the ESP32-C6's budgets: outputs equal to the reference, the wake score included."""
    g, _, calib = phoneme_graph(7)
    board = load_board("rv32-virt")
    art = write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    xs = np.stack([g.quantize_input(f) for f in calib[:8]])
    res = run_firmware(art, board, g, xs, tmp_path)
    assert res.first_mismatch is None
    assert np.array_equal(np.array(res.outputs, dtype=np.int64), run_batch(g, xs).astype(np.int64))


@pytest.mark.emulator
def test_qemu_phoneme_span_bit_exact(tmp_path):
    """The DS-CNN whose ctc reads a span, its phonemes allowed to repeat (the protocol's ctc), on the emulated board
    with the ESP32-C6's budgets: 24 windows of one stream (the state in the arena, through the ring's wrap) equal to
    the reference stepped the same way; the state is planned in the arena (its bytes live through every op)."""
    g, _, calib = phoneme_graph(2, span=(2, 2, 3, 1), repeats=True)
    board = load_board("rv32-virt")
    plan = make_plan(g, board)
    assert plan.scratch_bytes[-1] == ctc_state_bytes(g.layers[-1]) > 4
    art = write_model_bin(tmp_path / "model.bin", g, plan)
    xs = np.stack([g.quantize_input(f) for f in calib])
    res = run_firmware(art, board, g, xs, tmp_path)
    assert res.first_mismatch is None
    want = stepped(g, xs)
    assert np.array_equal(np.array(res.outputs, dtype=np.int64), want)
    assert len(set(want[:, -1])) > 10 and (want[:, -1] != run_batch(g, xs)[:, -1]).sum() > 10    # scores, not floors


@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="needs espeak-ng (make deps)")
def test_export_and_eval_the_phoneme_score_from_the_cli(trained_pipeline, tmp_path, capsys):
    """`pqlr export --score phonemes` on a student trained with the phoneme loss writes the branch, whose integer
    phoneme logits follow the fp32 head's and whose score follows the fp32 score (in the log domain, down to the
    output's floor: this tiny student hardly knows the phonemes); `pqlr eval --checkpoint model.bin` runs the
    integer model (the board's numbers) and its detector reads the integer phoneme score. A checkpoint without the
    head, and --score phonemes on a classifier-only model.bin, are refused with what to do."""
    import json
    from hostside import api
    from hostside.cli import main
    from hostside.errors import PqlrError
    from hostside.data.corpus import load_corpus
    from hostside.data.features import FrontEnd
    from hostside.evaluate import _stream_audio, stream_features
    from hostside.keyword import GraphPredictor, PhonemeScorer
    from hostside.train import load_checkpoint
    corpus = trained_pipeline["corpus"]
    ck = api.train(corpus, tmp_path / "c.pt", phoneme_ctc=0.5, epochs=3, seed=7, channels=8, blocks=1,
                   progress=False)["checkpoint"]
    assert main(["export", "--checkpoint", str(ck), "--corpus", str(corpus), "--board", "esp32c6", "--out",
                 str(tmp_path / "ph.bin"), "--calib", "40", "--score", "phonemes"]) == 0
    assert "wake score: phonemes" in capsys.readouterr().out
    art = read_model_bin(tmp_path / "ph.bin")
    assert art.graph.output_layer.op == "ctc" and art.graph.class_outputs == 3
    assert art.graph.output_layer.pad[3] == 1                       # the protocol's score: phonemes may repeat
    net, c = load_checkpoint(ck)
    fe = json.loads((tmp_path / "ph.json").read_text())["frontend"]
    _, x, yv = api.load_features(corpus, "val", fe)
    scorer = PhonemeScorer(c, "phonemes")
    with torch.no_grad():
        z = scorer.head.proj(net.trunk(torch.from_numpy(x[:8])).mean(dim=3).transpose(1, 2)).numpy()   # [N, T, V+1]
    head = art.graph.layers[-2]
    zq = np.stack([run(art.graph, art.graph.quantize_input(f), dump=True)[1][-2].reshape(z.shape[1:]) for f in x[:8]])
    assert np.corrcoef(z.ravel(), (zq.ravel() - head.out_zp) * head.out_scale)[0, 1] > 0.97
    got = GraphPredictor(art.graph)(None, x)
    want = scorer(net, x)
    floor = -255 / 2**CTC_BITS                              # the int8 score's lowest step (log score per phoneme)
    assert np.abs(np.log(got[:, 0]) - np.clip(np.log(want[:, 0]), floor, 0)).max() < 0.1
    assert (got[:, 1:].argmax(1) == want[:, 1:].argmax(1)).mean() > 0.9
    assert main(["export", "--checkpoint", str(ck), "--corpus", str(corpus), "--board", "esp32c6", "--out",
                 str(tmp_path / "pl.bin"), "--calib", "40", "--score", "phonemes", "--phoneme-repeats", "no"]) == 0
    plain = read_model_bin(tmp_path / "pl.bin").graph
    assert plain.output_layer.pad[3] == 0
    want_plain = PhonemeScorer(c, "phonemes", repeats=False)(net, x)
    assert np.abs(np.log(GraphPredictor(plain)(None, x)[:, 0]) - np.clip(np.log(want_plain[:, 0]), floor, 0)).max() < 0.1
    assert (want_plain[:, 0] <= want[:, 0] * (1 + 1e-5)).all() and (want_plain[:, 0] < 0.9 * want[:, 0]).any()
    assert main(["eval", "--checkpoint", str(tmp_path / "ph.bin"), "--corpus", str(corpus), "--out",
                 str(tmp_path / "ev")]) == 0
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert ev["wakeword"]["score"] == "phonemes (int8)" and ev["splits"]["val"]["n"] == len(x)
    # clip accuracy is the integer classifier's (its class logits' argmax), as a checkpoint's is its classifier's —
    # not an argmax over the phoneme score beside two class posteriors
    logits = run_batch(art.graph, np.stack([art.graph.quantize_input(f) for f in x]))[:, :3]
    assert ev["splits"]["val"]["accuracy"] == pytest.approx((logits.argmax(1) == yv).mean())
    # the span on the board: exported with --span, the integer model reads earlier windows of each file's stream
    assert main(["export", "--checkpoint", str(ck), "--corpus", str(corpus), "--board", "esp32c6", "--out",
                 str(tmp_path / "sp.bin"), "--calib", "40", "--score", "phonemes", "--span", "1.4"]) == 0
    assert "over 1.4 s (stateful" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "sp.bin")]) == 0
    assert "kept between inferences" in (said := capsys.readouterr().out) and "10 head frames before the window" in said
    assert "(frames 10–14: its centre)" in said and "a phoneme may be several spikes" in said
    sp = read_model_bin(tmp_path / "sp.bin")
    assert sp.graph.streaming and sp.scratch_bytes[-1] == ctc_state_bytes(sp.graph.layers[-1]) > 4
    assert sp.arena_bytes >= art.arena_bytes
    clips = [c for c in load_corpus(corpus).clips if c.split == "val"][:3]
    fes = FrontEnd.from_dict(fe)
    feats = np.concatenate([stream_features(_stream_audio(load_corpus(corpus), c.file, fes.sample_rate), fes, 100.0)
                            for c in clips])
    gp = GraphPredictor(sp.graph, stream=True)
    alone, streamed = GraphPredictor(sp.graph)(None, feats), gp(None, feats)
    assert np.array_equal(alone, GraphPredictor(art.graph)(None, feats))          # a new stream each: the window's
    assert np.array_equal(alone[:, 1:], streamed[:, 1:])                          # the classifier's unchanged
    assert sp.graph.layers[-1].pad[2] == 10                         # each block read from a window's centre
    k = 8                                      # 0.4 s more: 2 blocks of 2 windows, kept 2 blocks further back: K = 8
    count = int(gp.state[len(sp.graph.layers) - 1][:4].view("<u4")[0])           # one stream through every window
    assert gp.streaming and len(feats) >= 2 * k and count == k + (len(feats) - k) % k
    gp.new_stream()
    assert gp.state == {}
    assert main(["eval", "--checkpoint", str(tmp_path / "sp.bin"), "--corpus", str(corpus), "--out",
                 str(tmp_path / "ev2")]) == 0
    ev2 = json.loads((tmp_path / "ev2" / "eval.json").read_text())
    assert ev2["wakeword"]["score_span_s"] == pytest.approx(1.4)
    with pytest.raises(PqlrError, match="--stride-ms 100"):
        api.evaluate(tmp_path / "sp.bin", corpus, tmp_path / "x", stride_ms=50)
    with pytest.raises(PqlrError, match="exported with"):
        api.evaluate(tmp_path / "sp.bin", corpus, tmp_path / "x", span_s=1.4)
    with pytest.raises(PqlrError, match="whole blocks"):
        api.export(ck, corpus, "esp32c6", tmp_path / "x.bin", score="phonemes", span_s=1.3, progress=False)
    with pytest.raises(PqlrError, match="add --score phonemes"):
        api.export(ck, corpus, "esp32c6", tmp_path / "x.bin", span_s=1.4, progress=False)
    with pytest.raises(PqlrError, match="retrain with --phoneme-ctc"):
        api.export(trained_pipeline["root"] / "m.pt", corpus, "esp32c6", tmp_path / "x.bin", score="phonemes")
    with pytest.raises(PqlrError, match="the one it computes"):
        api.evaluate(trained_pipeline["model_bin"], corpus, tmp_path / "x", score="phonemes")


def test_fuzz_phoneme_model_bin(tmp_path):
    """5,000 files with the branch's layer entries, or the ctc's tile (its CRC and the hashes made valid again),
    mutated: the reader answers ArtifactError from one of its checks, never a crash; what it accepts runs."""
    g, _, calib = phoneme_graph(9)
    art = write_model_bin(tmp_path / "m.bin", g, make_plan(g, load_board("rv32-virt")))
    data = (tmp_path / "m.bin").read_bytes()
    n = len(g.layers)
    first = _entry(bytearray(data), n - 3)
    tile = art.tiles[-1]
    t0 = art.weights_offset + tile.offset
    x = g.quantize_input(calib[0])
    rng = np.random.default_rng(5)
    accepted = 0
    for i in range(5000):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            if i % 2:
                b[int(rng.integers(first, first + 3 * LAYER_SIZE))] = int(rng.integers(0, 256))
            else:
                b[int(rng.integers(t0 + params_bytes(1), t0 + tile.size))] = int(rng.integers(0, 256))
        _reseal_last_tile(b, art)
        try:
            a = read_model_bin(_fix_checksums(b))
        except ArtifactError as exc:
            assert "malformed (" not in str(exc), f"the reader crashed instead of a check firing: {exc}"
            continue
        accepted += 1
        run(a.graph, x)                                     # what is accepted is a graph the reference runs
    assert 0 < accepted < 5000
