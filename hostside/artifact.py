"""model.bin: the file the board reads its weights from. Format version 7, all little-endian.

    header (104 B)
      0  char[4]  magic "PQLR"          4  u16 format_version (7)     6  u16 header_size (104)
      8  u32 file_size                 12  u32 flags (0)
     16  u8[32] model_sha256 = SHA-256(header[48:100] ‖ file[header_size:])
     48  u32 layer_count   52 u32 layer_table_offset   56 u32 tile_count   60 u32 tile_table_offset
     64  u32 weights_offset 68 u32 weights_size
     72  u16 input_h, input_w, input_c, n_classes      80  f64 input_scale   88 i32 input_zp
     92  u32 arena_bytes    96 u32 tile_buffer_bytes
    100  u32 header_crc32 = CRC-32(header[0:100])
    The input scale is a float64 (version 1 had a float32): the host quantises inputs with it, and must round
    exactly as the QAT model that produced the integers did.
    flags bit 0: the plan is `xip` (weights read in place from memory-mapped flash; no tile buffer)
    layer table: layer_count × 104 B (LAYER_FMT below); a layer's flags bit 0: it runs in place (its output
                 overwrites its input); scratch_offset: its temporary in the arena (hostside/plan/planner.py).
                 Version 2 added, after the 64 bytes of version 1: i16 skip (an add's second tensor, −1: a
                 constant in its tiles), i16 in2_zp, u16 heads, u16 reserved, i32 ra, rb, m2, s2, f32 in2_scale,
                 u32 skip_offset (where the second tensor lives in the arena).
                 Layer flags bit 1: the layer requantises with TFLite's double rounding (hostside/graph.py), set
                 by `pqlr import`. A stream layer's output tensor (its state) is live through every op.
                 Version 3 widened kh, kw, sh, sw and the four paddings from u8 to u16 (a pool over 256+ rows
                 or tokens). Version 4 turned the u16 reserved into i16 src: the tensor the layer reads (−1: the
                 previous layer's output; ≥ 0: an earlier tensor, a branch such as the phoneme score's), and added
                 the ctc op (17); a ctc layer's skip is the classifier's logits, which it copies before its score.
                 Version 5 let a ctc read a span longer than its window (kh, sh, pad_t: hostside/graph.py), keeping
                 state between inferences in its scratch (ctc_state_bytes, live through every op); a version-4
                 reader would score the window alone without a word, hence the new number.
                 Version 6 let a ctc's span read each earlier block from the centre of an older window (pad_b =
                 Q·f: hostside/graph.py) rather than from a window's first frames; a version-5 reader would read the
                 first frames without a word, hence the new number.
                 Version 7 let a ctc's phonemes repeat (pad_r = 1: each may be several spikes with blanks between,
                 hostside/graph.py); a version-6 firmware would score plain CTC without a word, hence the new number.
                 Older versions are refused with the reason.
    tile table:  tile_count × 20 B: u16 layer, u16 ch_start, u16 ch_count, u16 reserved,
                 u32 offset (in the weights blob), u32 size, u32 crc32 (of the tile's bytes)
    weights blob: the tiles (hostside/plan/planner.py gives a tile's layout), 4-byte aligned.

The reader checks every field and turns any truncation, bad offset, bad CRC, bad hash or unknown
version into ArtifactError with a one-line message; it never raises anything else.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ArtifactError
from .graph import (ADD_BITS, ADD_OPS, CTC_MAX_FRAMES, CTC_MAX_STATES, CTC_TABLE, MAX_TOKENS, OP_NAMES, OPS,
                    PER_CHANNEL_OPS, SCALAR_PARAM_OPS, SCALAR_REQUANT_OPS, WEIGHTED_OPS, IntGraph, Layer,
                    ctc_sequences, ctc_state_bytes, ctc_table)
from .plan.planner import Plan, Tile
from .tiles import pack_channels, params_bytes, row_bytes, tile_size, unpack_int4

MAGIC = b"PQLR"
FORMAT_VERSION = 7     # 7: a ctc's repeats (pad_r); 6: where in a kept window a ctc's span reads (pad_b); 5: a ctc's span; 4: a layer may read an earlier tensor (src), the ctc op; 3: 16-bit kernel fields
HEADER_FMT = "<4sHHII32sIIIIIIHHHHdiII"
HEADER_SIZE = struct.calcsize(HEADER_FMT) + 4          # + header crc
LAYER_FMT = "<BBH6H4H4H4h2H2I2i2fIhhHhiiiifI"
LAYER_SIZE = struct.calcsize(LAYER_FMT)
MAX_RAM_BYTES = 64 << 20     # no plan for a microcontroller needs more; a board's budget is far below
TILE_FMT = "<HHHHIII"
TILE_SIZE = struct.calcsize(TILE_FMT)
assert HEADER_SIZE == 104 and LAYER_SIZE == 104 and TILE_SIZE == 20
HASHED_HEADER = slice(48, HEADER_SIZE - 4)          # the header fields the model hash covers

# The layer entry's fields, in LAYER_FMT's order, and their byte offsets (the firmware's loader uses these).
LAYER_FIELDS = ("op", "wbits", "flags", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "kh", "kw", "sh", "sw",
                "pad_t", "pad_l", "pad_b", "pad_r", "in_zp", "out_zp", "act_min", "act_max", "first_tile", "n_tiles",
                "t_in", "t_out", "multiplier", "shift", "in_scale", "out_scale", "scratch", "skip", "in2_zp", "heads",
                "src", "ra", "rb", "m2", "s2", "in2_scale", "skip_offset")
_CODES = "".join(ch * int(n or 1) for n, ch in re.findall(r"(\d*)([A-Za-z])", LAYER_FMT[1:]))   # one code per field
assert len(_CODES) == len(LAYER_FIELDS)
LAYER_OFFSETS = {name: struct.calcsize("<" + "".join(_CODES[:i])) for i, name in enumerate(LAYER_FIELDS)}
LAYER_FIELD_SIZE = {name: struct.calcsize("<" + _CODES[i]) for i, name in enumerate(LAYER_FIELDS)}
# What quantisation sets, and a same-architecture model may change: loaded by the firmware at boot.
QUANT_FIELDS = ("in_zp", "out_zp", "act_min", "act_max", "multiplier", "shift", "in_scale", "out_scale", "in2_zp",
                "ra", "rb", "m2", "s2", "in2_scale")
TILE_CRC_OFFSET = struct.calcsize("<HHHHII")
# header bytes outside the architecture: the model hash, the input quantisation and the header CRC
HEADER_NOT_ARCH = ((16, 48), (80, 92), (HEADER_SIZE - 4, HEADER_SIZE))


def architecture_crc32(data: bytes) -> int:
    """CRC-32 of what an app compiles in about its model: the header and the layer and tile tables with the
    quantisation numbers (QUANT_FIELDS), the tiles' CRCs, the model hash, the input quantisation and the header
    CRC zeroed. Two models with the same architecture crc differ only in weights and quantisation, which the
    firmware reads from model.bin at boot; the firmware computes the same CRC over its model partition."""
    h = bytearray(data[:HEADER_SIZE])
    for a, b in HEADER_NOT_ARCH:
        h[a:b] = bytes(b - a)
    n_layers, lt, n_tiles, tt = struct.unpack_from("<IIII", data, 48)
    crc = zlib.crc32(bytes(h))
    for i in range(n_layers):
        e = bytearray(data[lt + i * LAYER_SIZE: lt + (i + 1) * LAYER_SIZE])
        for f in QUANT_FIELDS:
            e[LAYER_OFFSETS[f]: LAYER_OFFSETS[f] + LAYER_FIELD_SIZE[f]] = bytes(LAYER_FIELD_SIZE[f])
        crc = zlib.crc32(bytes(e), crc)
    for i in range(n_tiles):
        e = bytearray(data[tt + i * TILE_SIZE: tt + (i + 1) * TILE_SIZE])
        e[TILE_CRC_OFFSET: TILE_CRC_OFFSET + 4] = bytes(4)
        crc = zlib.crc32(bytes(e), crc)
    return crc


@dataclass
class Artifact:
    graph: IntGraph
    tiles: list[Tile]
    arena_bytes: int
    tile_buffer_bytes: int
    tensor_offsets: list[int]
    model_sha256: str
    weights_offset: int
    size: int
    mode: str = "tiled"
    inplace: list[bool] | None = None
    scratch_offsets: list[int] | None = None
    scratch_bytes: list[int] | None = None
    data: bytes = field(default=b"", repr=False, compare=False)    # the validated file, byte for byte


def _k(op: str, in_shape, kernel) -> int:
    if op == "conv2d":
        return kernel[0] * kernel[1] * in_shape[2]
    if op == "dwconv2d":
        return kernel[0] * kernel[1]
    if op == "pwconv2d":
        return in_shape[2]
    if op == "fc":
        return in_shape[0] * in_shape[1] * in_shape[2]
    if op == "layernorm":
        return 1
    if op in ADD_OPS:
        return in_shape[2]
    if op in ("gelu", "lut"):
        return 256
    if op == "stream":
        return in_shape[2]
    if op == "ctc":
        return -1                # the table and the keyword sequences: any length past the table (checked below)
    return 0


def _rows(op: str, in_shape, out_shape) -> int:
    """Rows of a layer's parameter table (what tiles cut): see Layer.rows."""
    if op in ADD_OPS:
        return in_shape[0] * in_shape[1]
    if op in ("gelu", "lut", "ctc"):
        return 1
    if op == "stream":
        return (out_shape[0] - in_shape[0]) * in_shape[1]
    return out_shape[2]


def write_model_bin(path: Path, graph: IntGraph, plan: Plan) -> Artifact:
    tiles_bytes, tiles = [], []
    for t in plan.tiles:
        data = pack_channels(graph.layers[t.layer], t.ch_start, t.ch_count)
        assert len(data) == t.size
        tiles_bytes.append(data)
        tiles.append(Tile(t.layer, t.ch_start, t.ch_count, t.offset, t.size, zlib.crc32(data)))
    first_tile = {}
    for i, t in enumerate(tiles):
        first_tile.setdefault(t.layer, i)
    layer_tab = b""
    for li, L in enumerate(graph.layers):
        nt = sum(1 for t in tiles if t.layer == li)
        M = int(L.multiplier[0]) if L.op in SCALAR_PARAM_OPS else 0
        S = int(L.shift[0]) if L.op in SCALAR_PARAM_OPS else 0
        flags = (1 if plan.inplace and plan.inplace[li] else 0) | (2 if L.rounding == "double" else 0)
        scratch = plan.scratch_offsets[li] if plan.scratch_offsets else 0
        layer_tab += struct.pack(LAYER_FMT, OPS[L.op], L.wbits, flags, *L.in_shape, *L.out_shape, *L.kernel,
                                 *L.stride, *L.pad, L.in_zp, L.out_zp, L.act_min, L.act_max,
                                 first_tile.get(li, 0), nt, plan.tensor_offsets[graph.input_of(li)],
                                 plan.tensor_offsets[li + 1],
                                 M, S, L.in_scale, L.out_scale, scratch, L.skip, L.in2_zp, L.heads, L.src, L.ra, L.rb,
                                 L.m2, L.s2, L.in2_scale, plan.tensor_offsets[L.skip] if L.skip >= 0 else 0)
    tile_tab = b"".join(struct.pack(TILE_FMT, t.layer, t.ch_start, t.ch_count, 0, t.offset, t.size, t.crc32)
                        for t in tiles)
    blob = b"".join(tiles_bytes)
    lt_off = HEADER_SIZE
    tt_off = lt_off + len(layer_tab)
    w_off = (tt_off + len(tile_tab) + 15) & ~15
    body = layer_tab + tile_tab + b"\0" * (w_off - tt_off - len(tile_tab)) + blob
    file_size = HEADER_SIZE + len(body)
    ih, iw, ic = graph.input_shape
    tail = struct.pack("<IIIIIIHHHHdiII", len(graph.layers), lt_off, len(tiles), tt_off, w_off, len(blob),
                       ih, iw, ic, graph.output_layer.out_channels, graph.input_scale, graph.input_zp,
                       plan.arena_bytes, plan.tile_buffer_bytes)
    sha = hashlib.sha256(tail + body).digest()
    head = struct.pack("<4sHHII32s", MAGIC, FORMAT_VERSION, HEADER_SIZE, file_size, 1 if plan.mode == "xip" else 0,
                       sha) + tail
    data = head + struct.pack("<I", zlib.crc32(head)) + body
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    manifest = {"format_version": FORMAT_VERSION, "model_sha256": sha.hex(), "file_size": file_size,
                "classes": list(graph.classes), "frontend": graph.frontend,
                "input": {"shape": list(graph.input_shape), "scale": graph.input_scale, "zero_point": graph.input_zp},
                "layers": [{"name": L.name, "op": L.op, "in_shape": list(L.in_shape), "out_shape": list(L.out_shape),
                            "macs": L.macs, "weight_bytes": 0 if L.weights is None else int(L.weights.size)}
                           for L in graph.layers],
                "plan": plan.to_dict() | {"tiles": [t.__dict__ for t in tiles]}}
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=1))
    return read_model_bin(data)


def _fail(msg: str):
    raise ArtifactError(f"model.bin: {msg}")


def read_model_bin(src: Path | bytes | bytearray, expect_sha256: str | None = None) -> Artifact:
    """Validate everything and rebuild the integer graph. Raises ArtifactError, and only that."""
    try:
        if isinstance(src, (bytes, bytearray, memoryview)):
            data = bytes(src)
        else:
            try:
                data = Path(src).read_bytes()
            except OSError as exc:
                _fail(f"cannot read {src}: {exc.strerror}")
        return _parse(data, expect_sha256)
    except ArtifactError:
        raise
    except Exception as exc:  # a reader bug must still surface as the project's error, naming itself
        raise ArtifactError(f"model.bin: malformed ({type(exc).__name__}: {exc})") from None


def _parse(data: bytes, expect_sha256: str | None) -> Artifact:
    n = len(data)
    if n < HEADER_SIZE:
        _fail(f"truncated: {n} bytes, smaller than the {HEADER_SIZE}-byte header")
    if data[:4] != MAGIC:
        _fail(f"bad magic {data[:4]!r} (expected {MAGIC!r}); not a pqlr model file")
    (magic, version, hsize, fsize, flags, sha, lcount, lt_off, tcount, tt_off, w_off, w_size,
     ih, iw, ic, ncls, in_scale, in_zp, arena, tbuf) = struct.unpack_from(HEADER_FMT, data)
    if version != FORMAT_VERSION:
        if 0 < version < FORMAT_VERSION:
            _fail(f"format version {version} is older than this pqlr's {FORMAT_VERSION} (version 3 widened the "
                  f"kernel, stride and padding fields to 16 bits, version 4 added branches and the ctc op, version 5 "
                  f"the ctc's span, version 6 where it reads, version 7 its repeats); write it again with `pqlr export` or `pqlr compress`")
        _fail(f"unknown format version {version} (this pqlr reads version {FORMAT_VERSION})")
    if hsize != HEADER_SIZE:
        _fail(f"header size {hsize} != {HEADER_SIZE}")
    (crc,) = struct.unpack_from("<I", data, HEADER_SIZE - 4)
    if zlib.crc32(data[:HEADER_SIZE - 4]) != crc:
        _fail("header CRC mismatch (header corrupted)")
    if fsize != n:
        _fail(f"truncated or padded: header says {fsize} bytes, file has {n}")
    if hashlib.sha256(data[HASHED_HEADER] + data[HEADER_SIZE:]).digest() != sha:
        _fail("model SHA-256 mismatch (contents corrupted)")
    if expect_sha256 is not None and sha.hex() != expect_sha256:
        _fail(f"model hash {sha.hex()[:16]}… is not the expected {expect_sha256[:16]}…")
    for name, off, size in (("layer table", lt_off, lcount * LAYER_SIZE), ("tile table", tt_off, tcount * TILE_SIZE),
                            ("weights", w_off, w_size)):
        if off < HEADER_SIZE or off + size > n:
            _fail(f"{name} [{off}, {off + size}) lies outside the file (size {n})")
    if lcount == 0 or lcount > 4096 or tcount > 65535:
        _fail(f"implausible layer count {lcount} or tile count {tcount}")
    if not (np.isfinite(in_scale) and in_scale > 0) or not -128 <= in_zp <= 127:
        _fail(f"bad input quantisation (scale {in_scale}, zero point {in_zp})")
    tiles = []
    for i in range(tcount):
        layer, c0, cn, _, off, size, tcrc = struct.unpack_from(TILE_FMT, data, tt_off + i * TILE_SIZE)
        if off + size > w_size:
            _fail(f"tile {i} [{off}, {off + size}) lies outside the weights blob ({w_size} B)")
        if zlib.crc32(data[w_off + off: w_off + off + size]) != tcrc:
            _fail(f"tile {i} CRC mismatch (weights corrupted)")
        tiles.append(Tile(layer, c0, cn, off, size, tcrc))
    layers, offsets, inplace, scratch_offs = [], [], [], []

    def shape_of(k: int) -> tuple:
        """t_k's shape: the input's, or layer k − 1's output."""
        return layers[k - 1].out_shape if k else (ih, iw, ic)

    def lives_at(k: int, li: int, in_off: int) -> int:
        """Where t_k is in the arena, seen from layer li (which reads t_li at in_off)."""
        return in_off if k == li else offsets[k]
    prev_shape = (ih, iw, ic)
    mode = "xip" if flags & 1 else "tiled"
    if flags & ~1:
        _fail(f"unknown header flags {flags:#x}")
    for li in range(lcount):
        f = struct.unpack_from(LAYER_FMT, data, lt_off + li * LAYER_SIZE)
        op_code, wbits, lflags = f[0], f[1], f[2]
        in_shape, out_shape = tuple(f[3:6]), tuple(f[6:9])
        kernel, stride, pad = tuple(f[9:11]), tuple(f[11:13]), tuple(f[13:17])
        in_zp_l, out_zp, amin, amax = f[17:21]
        first, nt, in_off, out_off, M, S, isc, osc, scratch_off = f[21:30]
        skip, in2_zp, heads, src, ra, rb, m2, s2, in2_scale, skip_off = f[30:40]
        if op_code not in OP_NAMES:
            _fail(f"layer {li}: unknown op code {op_code}")
        op = OP_NAMES[op_code]
        if wbits not in (4, 8) or (wbits == 4 and op not in WEIGHTED_OPS):
            _fail(f"layer {li}: weight bit width {wbits} is not 4 or 8 (4 only for convolutions and fc)")
        if not -1 <= src < li:
            _fail(f"layer {li}: reads tensor {src}, which is not an earlier layer's input or output")
        if src >= 0:
            prev_shape = shape_of(src)
        if in_shape != prev_shape:
            _fail(f"layer {li}: input shape {in_shape} does not follow the {'previous output' if src < 0 else f'shape of t{src}'} "
                  f"{prev_shape}")
        if min(in_shape + out_shape) == 0 or min(stride) == 0 or min(kernel) == 0:
            _fail(f"layer {li}: zero-sized shape, kernel or stride")
        for v, what in ((in_zp_l, "input zero point"), (out_zp, "output zero point"), (amin, "act_min"),
                        (amax, "act_max"), (in2_zp, "second input zero point")):
            if not -128 <= v <= 127:
                _fail(f"layer {li}: {what} {v} outside int8")
        if amin > amax:
            _fail(f"layer {li}: act_min {amin} > act_max {amax}")
        if op in ("conv2d", "dwconv2d", "maxpool"):
            eh = (in_shape[0] + pad[0] + pad[2] - kernel[0]) // stride[0] + 1
            ew = (in_shape[1] + pad[1] + pad[3] - kernel[1]) // stride[1] + 1
            ec = in_shape[2] if op in ("dwconv2d", "maxpool") else out_shape[2]
            if (eh, ew, ec) != out_shape:
                _fail(f"layer {li}: output shape {out_shape} inconsistent with input, kernel, stride, padding")
        elif op == "pwconv2d" and out_shape[:2] != in_shape[:2]:
            _fail(f"layer {li}: pointwise conv changes the spatial shape")
        elif op == "meanpool" and out_shape != (1, 1, in_shape[2]):
            _fail(f"layer {li}: average pool output must be 1×1×C")
        elif op == "avgpool" and (out_shape[2] != in_shape[2] or in_shape[0] % out_shape[0] or in_shape[1] % out_shape[1]):
            _fail(f"layer {li}: average pool {in_shape} → {out_shape} is not whole windows of the same channels")
        elif op == "softmax" and (out_shape != in_shape or not 1 <= S <= 31 or M <= 0 or m2 > 0
                                  or in_shape[2] > 256):
            _fail(f"layer {li}: softmax must keep its shape, with a multiplier > 0, a left shift in [1, 31], "
                  f"diff_min ≤ 0 and at most 256 channels (the output shift stays below 32)")
        elif op == "fc" and out_shape[:2] != (1, 1):
            _fail(f"layer {li}: fully connected output must be 1×1×C")
        elif op == "stream" and (out_shape[1:] != in_shape[1:] or out_shape[0] <= in_shape[0]):
            _fail(f"layer {li}: a stream's output must be its input with state rows before it")
        elif op in ADD_OPS + ("layernorm", "gelu", "lut") and out_shape != in_shape:
            _fail(f"layer {li}: {op} must keep its input's shape")
        elif op == "reshape" and int(np.prod(in_shape)) != int(np.prod(out_shape)):
            _fail(f"layer {li}: reshape changes the element count")
        elif op == "attention":
            if heads == 0 or in_shape[2] != 3 * out_shape[2] or out_shape[2] % heads or in_shape[:2] != out_shape[:2]:
                _fail(f"layer {li}: attention {in_shape} → {out_shape} with {heads} heads is inconsistent")
            if in_shape[0] * in_shape[1] > MAX_TOKENS:
                _fail(f"layer {li}: attention over {in_shape[0] * in_shape[1]} tokens (at most {MAX_TOKENS})")
            if not 1 <= s2 <= 62 or m2 < 0:
                _fail(f"layer {li}: attention logit shift {s2} or multiplier {m2} out of range")
        if op == "ctc":
            if in_shape[1] != 1 or in_shape[0] > CTC_MAX_FRAMES or in_shape[2] < 2 or not 1 <= s2 <= 62 or m2 < 0:
                _fail(f"layer {li}: ctc over {in_shape} (frames × 1 × phonemes + blank, ≤ {CTC_MAX_FRAMES} frames) "
                      f"with logit shift {s2} and multiplier {m2} is inconsistent")
            f_ = max(1, kernel[0])
            if (kernel[1], stride[1], pad[1]) != (1, 1, 0) or pad[3] not in (0, 1) or pad[0] % f_ or pad[2] % f_ or (
                    pad[0] and not (kernel[0] <= in_shape[0] and in_shape[0] + pad[0] <= CTC_MAX_FRAMES)) or (
                    pad[2] and not (pad[0] and pad[2] + kernel[0] <= in_shape[0])):
                _fail(f"layer {li}: ctc span fields (kernel {kernel}, stride {stride}, padding {pad}): a span is "
                      f"kh head frames per block, sh windows per block, pad_t = blocks × kh frames before the "
                      f"window (≤ {CTC_MAX_FRAMES} frames in all, kh ≤ the window's frames) and pad_b = Q × kh "
                      f"frames into a kept window where its block starts (pad_b + kh ≤ the window's frames; 0 "
                      f"without a span), pad_r 0 or 1 (1: a phoneme may repeat); the rest 1, 1 and 0")
            if (255 * m2 / 2.0**s2 + 64) * (in_shape[0] + pad[0]) >= 2**29:
                _fail(f"layer {li}: ctc's logits step ({m2}·2^-{s2}) is so large that its sums could overflow int32")
            if not 0 <= skip <= li or skip_off != lives_at(skip, li, in_off):
                _fail(f"layer {li}: ctc must read the classifier's logits (an earlier tensor, where it lives)")
            two = shape_of(skip)
            if out_shape != (1, 1, int(np.prod(two)) + 1):
                _fail(f"layer {li}: ctc's output {out_shape} is not t{skip}'s {int(np.prod(two))} values and its score")
        elif op in ADD_OPS:
            if op == "add" and not (0 <= ra <= 1 << ADD_BITS and 0 <= rb <= 1 << ADD_BITS):
                _fail(f"layer {li}: add operand multipliers {ra}, {rb} outside [0, 2^{ADD_BITS}]")
            if op == "qadd" and not (ra >= 0 and rb >= 0 and 31 <= m2 <= 62 and 31 <= s2 <= 62 and 31 <= S <= 62
                                     and M >= 0):
                _fail(f"layer {li}: a TFLite add's multipliers must be ≥ 0 with right shifts in [31, 62]")
            if not -1 <= skip <= li:
                _fail(f"layer {li}: add reads tensor {skip}, which is not an earlier tensor")
            if skip >= 0:
                if shape_of(skip) != in_shape:
                    _fail(f"layer {li}: add's second tensor t{skip} does not have its shape {in_shape}")
                if skip_off != lives_at(skip, li, in_off):
                    _fail(f"layer {li}: add reads t{skip} at {skip_off}, but it lives elsewhere")
        elif skip != -1 or skip_off or ra or rb:
            _fail(f"layer {li}: a {op} has an add's fields set")
        if op == "ctc" and (ra or rb):
            _fail(f"layer {li}: a ctc has an add's fields set")
        L = Layer(name=f"l{li}_{op}", op=op, in_shape=in_shape, out_shape=out_shape, in_zp=in_zp_l,
                  out_zp=out_zp, act_min=amin, act_max=amax, in_scale=float(isc), out_scale=float(osc),
                  multiplier=np.array([M], np.int32), shift=np.array([S], np.int32), kernel=kernel,
                  stride=stride, pad=pad, wbits=wbits, skip=skip, in2_zp=in2_zp, in2_scale=float(in2_scale),
                  ra=ra, rb=rb, heads=heads, m2=m2, s2=s2, src=src)
        if op in SCALAR_REQUANT_OPS and (not 1 <= S <= 62 or M < 0):
            _fail(f"layer {li}: requantisation shift {S} or multiplier {M} out of range")
        if lflags & ~3:
            _fail(f"layer {li}: unknown layer flags {lflags:#x}")
        L.rounding = "double" if lflags & 2 else "single"
        has_tiles = (op in PER_CHANNEL_OPS or op in ("gelu", "lut", "stream", "ctc")
                     or (op in ADD_OPS and skip == -1))
        if not has_tiles:
            if nt:
                _fail(f"layer {li}: a {op} has {nt} weight tiles")
        else:
            K = _k(op, in_shape, kernel)
            C = _rows(op, in_shape, out_shape)
            if nt == 0 or first + nt > tcount:
                _fail(f"layer {li}: tiles [{first}, {first + nt}) outside the tile table ({tcount})")
            if op == "ctc":                          # one row, its length whole words (the sequences end in zeros)
                K = tiles[first].size - params_bytes(1)
                if nt != 1 or K <= CTC_TABLE:
                    _fail(f"layer {li}: a ctc's table and keyword sequences are one tile of more than {CTC_TABLE} bytes")
            bias, mult, shift, w = [], [], [], []
            c = 0
            for t in tiles[first: first + nt]:
                if t.layer != li or t.ch_start != c or t.ch_count == 0:
                    _fail(f"layer {li}: tile for layer {t.layer} channels {t.ch_start}+{t.ch_count} "
                          f"breaks the channel sequence at {c}")
                if t.size != tile_size(_KLayer(K, wbits), t.ch_count):
                    _fail(f"layer {li}: tile size {t.size} does not match {t.ch_count} channels × K={K}")
                raw = data[w_off + t.offset: w_off + t.offset + t.size]
                k = t.ch_count
                bias.append(np.frombuffer(raw, "<i4", k, 0))
                mult.append(np.frombuffer(raw, "<i4", k, 4 * k))
                shift.append(np.frombuffer(raw, np.uint8, k, 8 * k).astype(np.int32))
                rb_ = row_bytes(K, wbits)
                wraw = raw[params_bytes(k): params_bytes(k) + k * rb_]
                w.append(np.frombuffer(wraw, np.int8).reshape(-1) if wbits == 8 else unpack_int4(wraw, k, K).reshape(-1))
                c += k
            if c != C:
                _fail(f"layer {li}: tiles cover {c} rows, the layer has {C}")
            wflat = np.concatenate(w).reshape(C, K).astype(np.int64)
            if op in PER_CHANNEL_OPS:
                fold = in_zp_l if op in WEIGHTED_OPS else 0
                unfolded = np.concatenate(bias).astype(np.int64) + fold * wflat.sum(axis=1)   # tiles store b − zp·Σw
                if unfolded.min() < -(2**31) or unfolded.max() >= 2**31:
                    _fail(f"layer {li}: bias outside int32")
                L.bias = unfolded.astype(np.int32)
                L.multiplier = np.concatenate(mult).astype(np.int32)
                L.shift = np.concatenate(shift).astype(np.int32)
                if L.shift.min() < 1 or L.shift.max() > 62 or L.multiplier.min() < 0:
                    _fail(f"layer {li}: requantisation shift or multiplier out of range")
            elif any(b.any() for b in bias + mult + shift):
                _fail(f"layer {li}: a {op}'s tiles carry bias or requantisation values; they must be zero")
            wshape = {"conv2d": (C, kernel[0], kernel[1], in_shape[2]), "dwconv2d": (C, kernel[0], kernel[1]),
                      "pwconv2d": (C, in_shape[2]), "fc": (C, K), "layernorm": (C, 1), "add": (C, K), "qadd": (C, K),
                      "gelu": (1, 256), "lut": (1, 256), "stream": (C, K), "ctc": (1, K)}[op]
            L.weights = np.concatenate(w).reshape(wshape).copy()
            if op == "ctc":
                try:
                    seqs = ctc_sequences(L)
                except ValueError as exc:
                    _fail(f"layer {li}: {exc}")
                if not np.array_equal(L.weights[0, :CTC_TABLE], ctc_table()):
                    _fail(f"layer {li}: the ctc's logadd table is not hostside/graph.py's ctc_table()")
                if not seqs or any(len(q) * 2 + 1 > CTC_MAX_STATES or min(q) < 1 or max(q) >= in_shape[2]
                                   for q in seqs):
                    _fail(f"layer {li}: ctc keyword sequences must be 1–{(CTC_MAX_STATES - 1) // 2} phonemes in "
                          f"[1, {in_shape[2] - 1}]")
            if wbits == 4 and L.weights.min(initial=0) < -7:
                _fail(f"layer {li}: an int4 weight is −8; int4 weights are in [−7, 7]")
        for off, size in ((in_off, int(np.prod(in_shape))), (out_off, int(np.prod(out_shape)))):
            if off + size > arena:
                _fail(f"layer {li}: tensor [{off}, {off + size}) outside the {arena}-byte arena")
        if li == 0:
            offsets.append(in_off)
        elif src >= 0 and in_off != offsets[src]:
            _fail(f"layer {li}: reads t{src} at {in_off}, but it lives at {offsets[src]}")
        elif src < 0 and in_off != offsets[-1]:
            _fail(f"layer {li}: reads its input at {in_off}, but layer {li - 1} wrote it at {offsets[-1]}")
        offsets.append(out_off)
        inplace.append(bool(lflags & 1))
        scratch_offs.append(scratch_off)
        layers.append(L)
        prev_shape = out_shape
    if layers[-1].out_shape[2] != ncls:
        _fail(f"header says {ncls} classes, the last layer has {layers[-1].out_shape[2]} outputs")
    if arena > MAX_RAM_BYTES or tbuf > MAX_RAM_BYTES:
        _fail(f"arena {arena} B / tile buffer {tbuf} B: larger than any microcontroller's RAM "
              f"({MAX_RAM_BYTES} B); a board's own budget is checked by `pqlr plan`")
    if mode == "tiled" and tiles and tbuf < max(t.size for t in tiles):
        _fail(f"tile buffer {tbuf} B is smaller than the largest tile")
    if mode == "xip" and tbuf != 0:
        _fail(f"an xip plan has no tile buffer, but the header says {tbuf} B")
    kinds = {L.rounding for L in layers}
    graph = IntGraph(input_shape=(ih, iw, ic), input_scale=float(in_scale), input_zp=in_zp, layers=layers,
                     rounding=kinds.pop() if len(kinds) == 1 else "mixed")
    scratch_bytes = _check_memory_plan(graph, tiles, mode, offsets, inplace, scratch_offs, arena)
    return Artifact(graph=graph, tiles=tiles, arena_bytes=arena, tile_buffer_bytes=tbuf, tensor_offsets=offsets,
                    model_sha256=sha.hex(), weights_offset=w_off, size=n, mode=mode, inplace=inplace,
                    scratch_offsets=scratch_offs, scratch_bytes=scratch_bytes, data=bytes(data))


def _check_memory_plan(graph, tiles, mode, offsets, inplace, scratch_offs, arena) -> list[int]:
    """Re-derive what the firmware will do and refuse a plan that could corrupt memory: in place only where
    legal (and never over a tensor a residual connection still needs), scratch inside the arena, and no two
    buffers that are live at the same op overlapping."""
    from .plan.planner import (conv_lead, conv_overlap, inplace_rule, may_overwrite, packed_fits, swar_scratch,
                               tensor_lifetimes, uses_scratch)
    n = len(graph.layers)
    sizes = [int(np.prod(s)) for s in graph.tensor_shapes()]
    last = graph.last_use()
    life = tensor_lifetimes(graph)
    group = list(range(n + 1))
    scratch = [0] * n
    may_meet = set()          # (op, output offset, input offset): a conv2d over its consumed input
    for i, L in enumerate(graph.layers):
        ts = [t for t in tiles if t.layer == i]
        single = mode == "xip" or len(ts) <= 1
        legal, temp = inplace_rule(L, single)
        if inplace[i]:
            if not legal:
                _fail(f"layer {i}: marked in place, which is not legal for this {L.op}")
            if not may_overwrite(graph, i, group, last):
                _fail(f"layer {i}: marked in place, but its input is still read by a later layer")
            if offsets[i] != offsets[i + 1]:
                _fail(f"layer {i}: in place but its output is not at its input's offset")
            group[i + 1] = group[i]
        elif L.op == "reshape":
            _fail(f"layer {i}: a reshape must share its input's buffer")
        elif conv_overlap(graph, i, single, group, last) and offsets[i] - offsets[i + 1] >= conv_lead(L):
            # a conv2d may write over its consumed input when the input lies at least conv_lead bytes into its
            # output: at that op, that one pair may overlap
            may_meet.add((i, offsets[i + 1], offsets[i]))
        if uses_scratch(L, inplace[i]):
            scratch[i] = temp
            if scratch_offs[i] + temp > arena:
                _fail(f"layer {i}: scratch [{scratch_offs[i]}, {scratch_offs[i] + temp}) outside the arena")
    # one buffer per alias group: its offset, its largest member, the union of its members' lifetimes
    bufs: dict[int, list] = {}
    for k in range(n + 1):
        start, end = life[k]
        b = bufs.setdefault(group[k], [offsets[k], 0, start, end])
        if offsets[k] != b[0]:
            _fail(f"tensor t{k} shares a buffer with t{group[k]} but not its offset")
        b[1], b[2], b[3] = max(b[1], sizes[k]), min(b[2], start), max(b[3], end)
    for off, size, _, _ in bufs.values():
        if off + size > arena:
            _fail(f"a tensor [{off}, {off + size}) lies outside the {arena}-byte arena")
    kept = [j for j in range(n) if ctc_state_bytes(graph.layers[j])]      # a ctc's state: live through every op
    # the packed (SWAR) kernels run where the plan gives them their scratch: as many bytes free at that offset
    for i, L in enumerate(graph.layers):
        want = swar_scratch(L)
        if want > scratch[i]:
            live = [(off, size) for off, size, a, b in bufs.values() if a <= i <= b]
            live += [(scratch_offs[j], scratch[j]) for j in kept if j != i]
            if packed_fits(scratch_offs[i], want, arena, live):
                scratch[i] = want
    for i in range(n):
        spans = [(off, size) for off, size, a, b in bufs.values() if a <= i <= b]
        spans += [(scratch_offs[j], scratch[j]) for j in kept if j != i]
        if scratch[i]:
            spans.append((scratch_offs[i], scratch[i]))
        spans.sort()
        for x, (a, sa) in enumerate(spans):
            for b, _ in spans[x + 1:]:
                if b >= a + sa:
                    break
                if (i, a, b) not in may_meet:
                    _fail(f"layer {i}: buffers [{a}, {a + sa}) and [{b}, …) overlap while both are live")
    return scratch


class _KLayer:
    """Stand-in giving tile_size() a layer's per-channel weight count before its weights exist."""
    def __init__(self, k: int, wbits: int):
        self.weights_per_channel = k
        self.wbits = wbits
