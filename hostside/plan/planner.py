"""The planner.

Tiles: a layer's packed parameters are cut by output channels into tiles no larger than the board's
tile budget; the bytes of a tile (hostside/tiles.py) are the artifact's format, not the planner's.

Arena: tensor t_k (t_0 the input, t_k the output of layer k−1) is live from op k−1 to op k. A layer that
may run in place (inplace_rule) puts its output in its input's buffer. Buffers (alias groups and per-layer
scratch) get offsets greedily by size, largest first, at the lowest 4-byte-aligned offset that does not
overlap a placed buffer whose lifetime intersects (TFLite Micro's greedy planner). A conv2d whose input dies
with it may write its output over the input rows it has consumed: its input's buffer is then placed conv_lead
bytes into its output's (conv_overlap), where the arena comes out no larger.

Budgets: weights ≤ model partition; tile buffer + arena + stack estimate ≤ the board's SRAM budget.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..boards import Board
from ..errors import BudgetError
from ..graph import IntGraph, Layer, ctc_state_bytes
from ..tiles import PARAM_BYTES_PER_CHANNEL, align4 as _align4, row_bytes, tile_size

PW_PIXEL_BLOCK = 4            # pixels an in-place pointwise kernel computes before writing back
MIN_TILE_ROWS = 4             # the tuned kernels block 4 output channels; smaller tiles forfeit that
SCRATCH_OPS = ("conv2d", "attention")   # use their scratch without running in place (others: only in place)
CONV_PIXEL_BLOCK = 2          # input patches a conv2d kernel gathers at a time
SWAR_PIXELS = 4               # pixels the rv32 int8 kernels pack into 16-bit lanes (kernels_rv32.h, swar_pack4)


def swar_scratch(layer: Layer) -> int:
    """Scratch bytes the rv32 kernels pack SWAR_PIXELS input pixels (or patches) into, as int32 pairs of lanes:
    pointwise layers (int8 or int4 weights) and conv2d layers with int8 weights, of at least SWAR_PIXELS output
    pixels (PQLR_SWAR_MIN_PIXELS in kernels_rv32.h); 0 for the others (one-pixel layers keep the one-pixel path)."""
    if not (layer.op == "pwconv2d" or (layer.op == "conv2d" and layer.wbits == 8)):
        return 0
    if layer.out_shape[0] * layer.out_shape[1] < SWAR_PIXELS:
        return 0
    k = layer.in_shape[2] * (layer.kernel[0] * layer.kernel[1] if layer.op == "conv2d" else 1)
    return 2 * k * 4


def uses_scratch(layer: Layer, inplace: bool) -> bool:
    """Whether the layer's (plain) scratch is allocated: in place, or an op that needs one anyway."""
    return inplace or layer.op in SCRATCH_OPS or ctc_state_bytes(layer) > 0


def packed_fits(off: int, size: int, arena: int, live: list[tuple[int, int]]) -> bool:
    """Whether [off, off + size) lies in the arena and overlaps none of the (offset, size) spans live at the op."""
    return 0 <= off and off + size <= arena and all(off + size <= a or a + sa <= off for a, sa in live)


def upgrade_packed(graph: IntGraph, scratch: list[int], scratch_offs: list[int], spans_at, arena: int) -> None:
    """Give the packed (SWAR) kernels their scratch where it fits in the arena as planned, never a byte more:
    the planner places the plain scratch first, then moves a layer's scratch to the lowest offset where
    swar_scratch(layer) bytes overlap nothing live at that op. The firmware runs the packed kernel exactly where
    the plan gives it that much (spans_at(i): the (offset, size) spans live at op i, the layer's own scratch
    excluded)."""
    for i, L in enumerate(graph.layers):
        want = swar_scratch(L)
        if want <= scratch[i]:
            continue
        live = spans_at(i)
        ends = sorted({0} | {a + sa for a, sa in live})
        for off in ((e + 3) & ~3 for e in ends):
            if packed_fits(off, want, arena, live):
                scratch[i], scratch_offs[i] = want, off
                break


@dataclass(frozen=True)
class Tile:
    layer: int
    ch_start: int
    ch_count: int
    offset: int          # within the weights blob
    size: int
    crc32: int = 0


@dataclass
class Plan:
    tiles: list[Tile]
    tile_buffer_bytes: int
    tensor_offsets: list[int]
    tensor_sizes: list[int]
    arena_bytes: int
    weight_bytes: int
    stack_estimate_bytes: int
    budget: dict
    mode: str = "tiled"                                   # tiled | xip
    inplace: list[bool] = field(default_factory=list)     # per layer: output overwrites its input
    scratch_offsets: list[int] = field(default_factory=list)
    scratch_bytes: list[int] = field(default_factory=list)
    tile_budget_bytes: int = 0                            # the tile size the planner chose (≤ the board's)

    @property
    def peak_ram_bytes(self) -> int:
        return self.tile_buffer_bytes + self.arena_bytes + self.stack_estimate_bytes

    def to_dict(self) -> dict:
        return {"mode": self.mode, "tile_buffer_bytes": self.tile_buffer_bytes, "arena_bytes": self.arena_bytes,
                "stack_estimate_bytes": self.stack_estimate_bytes, "peak_ram_bytes": self.peak_ram_bytes,
                "weight_bytes": self.weight_bytes, "tensor_offsets": self.tensor_offsets,
                "tensor_sizes": self.tensor_sizes, "inplace": self.inplace, "scratch_offsets": self.scratch_offsets,
                "scratch_bytes": self.scratch_bytes, "tile_budget_bytes": self.tile_budget_bytes,
                "tiles": [asdict(t) for t in self.tiles], "budget": self.budget}


def tile_layer(layer: Layer, budget: int) -> list[tuple[int, int]]:
    """(ch_start, ch_count) pairs: as many channels per tile as fit, tiles as even as possible — in whole
    blocks of MIN_TILE_ROWS channels when a tile holds at least one block (the tuned kernels compute 4
    output channels at a time; a 7-channel tile would run a 3-channel remainder every time)."""
    C = layer.rows
    per = PARAM_BYTES_PER_CHANNEL + row_bytes(layer.weights_per_channel, layer.wbits)
    n_max = min(C, budget // per)
    while n_max > 0 and tile_size(layer, n_max) > budget:
        n_max -= 1
    if n_max == 0:
        raise BudgetError(f"layer {layer.name}: one row (output channel) needs {tile_size(layer, 1)} bytes "
                          f"but the tile budget is {budget} bytes; raise tile_buffer_budget_bytes in the "
                          f"board file or make the layer smaller")
    if C > n_max >= MIN_TILE_ROWS:
        n_max -= n_max % MIN_TILE_ROWS
        n_tiles = -(-C // n_max)
        blocks = -(-C // MIN_TILE_ROWS)
        base, extra = divmod(blocks, n_tiles)
        sizes = [MIN_TILE_ROWS * (base + (1 if i < extra else 0)) for i in range(n_tiles)]
        sizes[-1] -= sum(sizes) - C                        # the last tile ends at channel C
    else:
        n_tiles = -(-C // n_max)
        base, extra = divmod(C, n_tiles)
        sizes = [base + (1 if i < extra else 0) for i in range(n_tiles)]
    out, c = [], 0
    for n in sizes:
        out.append((c, n))
        c += n
    return out


def plan_arena(sizes: list[int], lifetimes: list[tuple[int, int]],
               attach: dict[int, tuple[int, int]] | None = None) -> tuple[list[int], int]:
    """Greedy by size: returns (offsets, arena bytes). lifetimes are inclusive [first_op, last_op]. attach: buffer
    j → (k, rel): j is placed at k's offset + rel, overlapping k if it will (the caller has checked that this is
    safe, conv_overlap); j and k are placed together, at the lowest offset where neither meets another live
    buffer."""
    attach = attach or {}
    parts = {k: [(0, k)] for k in range(len(sizes)) if k not in attach}
    for j, (k, rel) in attach.items():
        parts[k].append((rel, j))
    order = sorted(parts, key=lambda i: (-sizes[i], i))
    placed: list[int] = []
    offsets = [0] * len(sizes)

    def meets(a: int, b: int) -> bool:
        return not (lifetimes[a][1] < lifetimes[b][0] or lifetimes[b][1] < lifetimes[a][0])

    for i in order:
        off = 0
        moved = True
        while moved:                       # lowest offset at which every part clears every live placed buffer
            moved = False
            for rel, j in parts[i]:
                for q in placed:
                    lo, hi = offsets[q], offsets[q] + _align4(sizes[q])
                    if meets(j, q) and off + rel < hi and lo < off + rel + sizes[j]:
                        off = _align4(hi - rel)
                        moved = True
        for rel, j in parts[i]:
            offsets[j] = off + rel
            placed.append(j)
    arena = max((offsets[i] + _align4(sizes[i]) for i in range(len(sizes))), default=0)
    return offsets, arena


def conv_lead(layer: Layer) -> int:
    """The least distance, in bytes, from a conv2d's output buffer to its input for the output to overwrite
    input that no later pixel reads: every conv2d kernel (kernels_ref.c, kernels_rv32.h) computes the output
    pixels in order, all of a pixel's channels from one tile, reading a pixel's inputs before it writes that
    pixel, so pixel p's outputs [p·Cout, (p+1)·Cout) may overwrite every input row above the first one pixel p
    reads, max(0, oy·sh − pad_t). Rounded up to 4 bytes."""
    (ih, iw, cin), (oh, ow, cout) = layer.in_shape, layer.out_shape
    lead = 0
    for oy in range(oh):
        first = max(0, oy * layer.stride[0] - layer.pad[0]) * iw * cin
        lead = max(lead, (oy + 1) * ow * cout - first)     # the row's last pixel; the others need no more
    return _align4(lead)


def conv_overlap(graph: IntGraph, i: int, single_tile: bool, group: list[int], last: list[int]) -> bool:
    """Whether conv2d layer i may write its output over its input (at conv_lead bytes into the output): not in
    place, all its channels in one tile, and nothing sharing the input's buffer read after it."""
    L = graph.layers[i]
    return (L.op == "conv2d" and L.src < 0 and single_tile and may_overwrite(graph, i, group, last)
            and conv_lead(L) < int(np.prod(L.out_shape)))


def inplace_rule(layer: Layer, single_tile: bool) -> tuple[bool, int]:
    """(legal, scratch bytes) for computing `layer` in place (its output overwriting its input).

    - depthwise, stride 1, odd kernel, 'same' padding: row by row, keeping the (kh+1)/2 input rows still
      needed in a ring buffer of (kh+1)/2 rows × W × C bytes (the arena's pixel stride);
    - pointwise with Cout ≤ Cin and all weights at hand (one tile, or xip): PW_PIXEL_BLOCK pixels at a time,
      their outputs gathered in a PW_PIXEL_BLOCK × Cout temporary, so a pixel is overwritten only after it
      is consumed;
    - average pooling (both rules): channel by channel (output channel c overwrites input pixel 0 channel c, read
      only by c); softmax: each pixel's row is read whole (maximum, sum) before its outputs are written;
    - add, gelu, lut: element by element; reshape: the same bytes (always aliased, nothing is written);
    - layer norm with all its channels at hand: pixel by pixel (the pixel's sums first, then its channels);
    - attention: not in place; a scratch of 4·(2T + hd) bytes holds one query's int32 exps (T tokens), the
      head's key sums (T) and its hd context sums;
    - a layer that reads an earlier tensor (a branch: src) never runs in place (that tensor may be read later);
    - a ctc that reads a span: not in place; its scratch is its state (ctc_state_bytes), live through every op;
    - everything else (the first conv, fully connected layers) reads its input after writing: not in place;
      a conv2d gets a CONV_PIXEL_BLOCK × K scratch for its input patches (K = kh·kw·Cin);
    - pointwise and int8 conv2d layers of ≥ SWAR_PIXELS pixels get swar_scratch's packed block instead where it
      fits in the arena (upgrade_packed; in place, the packed pixels are consumed before their outputs are written).
    """
    legal, temp = _inplace_rule(layer, single_tile)
    return legal and layer.src < 0, temp        # a branch reads an earlier tensor, which others may still need


def _inplace_rule(layer: Layer, single_tile: bool) -> tuple[bool, int]:
    h, w, c = layer.in_shape
    if layer.op == "conv2d":
        return False, CONV_PIXEL_BLOCK * layer.kernel[0] * layer.kernel[1] * c
    if layer.op == "dwconv2d":
        kh, kw = layer.kernel
        same = layer.pad == (kh // 2, kw // 2, kh // 2, kw // 2) and layer.out_shape == layer.in_shape
        if layer.stride == (1, 1) and kh % 2 == 1 and kw % 2 == 1 and same:
            return True, ((kh + 1) // 2) * w * c
    elif layer.op == "pwconv2d":
        if single_tile and layer.out_shape[2] <= c:
            return True, PW_PIXEL_BLOCK * layer.out_shape[2]
    elif layer.op in ("avgpool", "meanpool", "add", "qadd", "gelu", "lut", "reshape", "softmax"):
        return True, 0
    elif layer.op == "layernorm":
        return single_tile, 0
    elif layer.op == "ctc":
        return False, ctc_state_bytes(layer)    # its state (a span): kept between inferences, never in place
    elif layer.op == "attention":
        return False, 4 * (2 * layer.in_shape[0] * layer.in_shape[1] + layer.out_shape[2] // max(1, layer.heads))
    return False, 0


def tensor_lifetimes(graph: IntGraph) -> list[tuple[int, int]]:
    """Inclusive [first op, last op] each tensor's buffer is live: from the op before it is written to its last
    reader; a stream's output (its state) is live through every op, since it persists between inferences."""
    n = len(graph.layers)
    last = graph.last_use()
    keep = graph.persistent()
    return [(0, n - 1) if k in keep else (max(0, k - 1), min(last[k], n - 1)) for k in range(n + 1)]


def may_overwrite(graph: IntGraph, i: int, group: list[int], last: list[int]) -> bool:
    """Layer i may write over its input's buffer only if nothing sharing that buffer is read after op i
    (a residual connection keeps its tensor alive). A reshape writes nothing, so it may always alias."""
    if graph.layers[i].op == "reshape":
        return True
    keep = graph.persistent()
    if any(k in keep for k in range(i + 1) if group[k] == group[i]):
        return False                     # a stream's rows are its state: never written over
    return all(last[k] <= i for k in range(i + 1) if group[k] == group[i])


def _tiles_for(graph: IntGraph, budget: int | None) -> list[Tile]:
    tiles, offset = [], 0
    for li, layer in enumerate(graph.layers):
        if layer.weights is None:
            continue
        parts = [(0, layer.rows)] if budget is None else tile_layer(layer, budget)
        for c0, n in parts:
            size = tile_size(layer, n)
            tiles.append(Tile(layer=li, ch_start=c0, ch_count=n, offset=offset, size=size))
            offset += size
    return tiles


PACKED = ("fit", "always", "never")


def plan_memory(graph: IntGraph, tiles: list[Tile], mode: str, packed: str = "fit") -> dict:
    """In-place decisions, alias groups and the arena: tensors t0 … tL and per-layer scratch buffers. packed: the
    scratch of the packed (SWAR) kernels only where it fits in the arena the other buffers need ("fit", never a byte
    more), for every layer that can use it ("always": faster, the arena may grow), or nowhere ("never")."""
    if packed not in PACKED:
        raise BudgetError(f"packed must be one of {PACKED}, not {packed!r}")
    n = len(graph.layers)
    shapes = graph.tensor_shapes()
    sizes = [int(np.prod(s)) for s in shapes]
    per_layer = [[t for t in tiles if t.layer == i] for i in range(n)]
    group = list(range(n + 1))                 # tensor → the buffer it lives in
    last = graph.last_use()
    inplace, scratch = [False] * n, [0] * n
    for i, L in enumerate(graph.layers):
        ts = per_layer[i]
        single = mode == "xip" or len(ts) <= 1
        ok, temp = inplace_rule(L, single)
        ok = ok and may_overwrite(graph, i, group, last)
        if uses_scratch(L, ok):
            scratch[i] = temp
        if packed == "always":
            scratch[i] = max(scratch[i], swar_scratch(L))
        if ok:
            inplace[i] = True
            group[i + 1] = group[i]
    # buffers: one per alias group (the largest member, the union of lifetimes), one per scratch
    life = tensor_lifetimes(graph)
    roots = sorted(set(group))
    b_sizes, b_life = [], []
    for r in roots:
        members = [k for k in range(n + 1) if group[k] == r]
        b_sizes.append(max(sizes[k] for k in members))
        b_life.append((min(life[k][0] for k in members), max(life[k][1] for k in members)))
    scratch_idx = {}
    for i in range(n):
        if scratch[i]:
            scratch_idx[i] = len(b_sizes)
            b_sizes.append(scratch[i])
            b_life.append((0, n - 1) if ctc_state_bytes(graph.layers[i]) else (i, i))   # a ctc's state persists
    # a conv2d may write over the input rows it has consumed (conv_overlap): its input's buffer then sits
    # conv_lead bytes into its output's; planned both ways, the smaller arena is kept (on a tie, the one that
    # gives the packed kernels more scratch)
    attach = {}
    for i, L in enumerate(graph.layers):
        if not inplace[i] and conv_overlap(graph, i, mode == "xip" or len(per_layer[i]) <= 1, group, last):
            attach[roots.index(group[i])] = (roots.index(group[i + 1]), conv_lead(L))
    best = None
    for att in ([{}, attach] if attach else [{}]):
        offs, arena = plan_arena(b_sizes, b_life, att)
        sc, sc_offs = list(scratch), [offs[scratch_idx[i]] if i in scratch_idx else 0 for i in range(n)]

        def spans_at(i, offs=offs):
            return [(offs[b], b_sizes[b]) for b in range(len(b_sizes))
                    if b_life[b][0] <= i <= b_life[b][1] and b != scratch_idx.get(i)]
        if packed == "fit":
            upgrade_packed(graph, sc, sc_offs, spans_at, arena)
        key = (arena, -sum(sc))
        if best is None or key < best[0]:
            best = (key, offs, arena, sc, sc_offs)
    _, offs, arena, scratch, scratch_offs = best
    return {"tensor_offsets": [offs[roots.index(group[k])] for k in range(n + 1)], "tensor_sizes": sizes,
            "inplace": inplace, "scratch_bytes": scratch, "scratch_offsets": scratch_offs, "arena_bytes": arena}


def make_plan(graph: IntGraph, board: Board, check_budget: bool = True, mode: str = "tiled",
              tile_budget: int | None = None, fixed_tile_buffer: int | None = None, packed: str = "fit") -> Plan:
    """The plan with the least peak RAM. tiled: weights stream through one tile buffer, whose size the
    planner chooses among the layers' whole sizes and the board's budget (a bigger tile can let a layer
    run in place and save more arena than it costs); packed: where the packed (SWAR) kernels get their scratch
    (plan_memory: "fit" by default, never growing the arena); xip: weights are read in place from memory-mapped
    flash, no tile buffer."""
    if mode not in ("tiled", "xip"):
        raise BudgetError(f"unknown plan mode {mode!r} (tiled or xip)")
    board_budget = board.tile_buffer_budget_bytes
    if mode == "xip":
        candidates = [None]
    elif tile_budget is not None:
        candidates = [tile_budget]
    else:
        weighted = [L for L in graph.layers if L.weights is not None]
        # every tile holds a kernel block of channels (MIN_TILE_ROWS) where the board's budget allows: a
        # one-channel tile saves a few hundred bytes and costs the register blocking (about 2× the time)
        floor = max((tile_size(L, 1) for L in weighted), default=0)
        blocked = max((tile_size(L, min(L.rows, MIN_TILE_ROWS)) for L in weighted), default=0)
        if blocked <= board_budget:
            floor = blocked
        whole = {tile_size(L, L.rows) for L in weighted}
        candidates = sorted({b for b in whole | {floor} if floor <= b <= board_budget} | {board_budget})
    best = None
    for budget in candidates:
        tiles = _tiles_for(graph, budget)
        mem = plan_memory(graph, tiles, mode, packed)
        tile_buf = 0 if mode == "xip" else max((t.size for t in tiles), default=0)
        peak = tile_buf + mem["arena_bytes"]
        if best is None or peak < best[0]:
            best = (peak, budget, tiles, mem, tile_buf)
    _, budget, tiles, mem, tile_buf = best
    if fixed_tile_buffer is not None and mode == "tiled":
        tile_buf = max(tile_buf, fixed_tile_buffer)      # a scheme that allocates a fixed tile buffer
    part = board.model_partition.size
    plan = Plan(tiles=tiles, tile_buffer_bytes=tile_buf, tensor_offsets=mem["tensor_offsets"],
                tensor_sizes=mem["tensor_sizes"], arena_bytes=mem["arena_bytes"],
                weight_bytes=sum(t.size for t in tiles), stack_estimate_bytes=board.stack_estimate_bytes,
                budget={"sram_budget_bytes": board.sram_budget_bytes, "model_partition_bytes": part,
                        "tile_buffer_budget_bytes": board_budget},
                mode=mode, inplace=mem["inplace"], scratch_offsets=mem["scratch_offsets"],
                scratch_bytes=mem["scratch_bytes"], tile_budget_bytes=budget or 0)
    if check_budget:
        check_budgets(plan, board)
    return plan


def artifact_plan(art, board: Board) -> Plan:
    """The plan a model.bin carries, as a Plan, with the board's stack estimate."""
    return Plan(tiles=art.tiles, tile_buffer_bytes=art.tile_buffer_bytes, tensor_offsets=art.tensor_offsets,
                tensor_sizes=[], arena_bytes=art.arena_bytes, weight_bytes=sum(t.size for t in art.tiles),
                stack_estimate_bytes=board.stack_estimate_bytes, budget={})


def check_artifact(art, board: Board) -> Plan:
    """A model.bin against a board's budgets, before anything is rendered or built (BudgetError with the
    numbers otherwise)."""
    plan = artifact_plan(art, board)
    check_budgets(plan, board, model_bin_bytes=art.size)
    return plan


def check_budgets(plan: Plan, board: Board, model_bin_bytes: int | None = None) -> None:
    problems = []
    if plan.tile_buffer_bytes > board.tile_buffer_budget_bytes:
        problems.append(f"tile buffer {plan.tile_buffer_bytes} B exceeds the board's tile_buffer_budget_bytes "
                        f"{board.tile_buffer_budget_bytes} B (plan again for this board: `pqlr export --board "
                        f"{board.name}`)")
    flash_need = model_bin_bytes if model_bin_bytes is not None else plan.weight_bytes
    if flash_need > board.model_partition.size:
        problems.append(f"model needs {flash_need} B of flash but the model partition holds "
                        f"{board.model_partition.size} B (int4 weights — `pqlr compress`, or `--wbits 4` for a "
                        f"transformer — or a board file with a larger `model` partition)")
    if plan.peak_ram_bytes > board.sram_budget_bytes:
        problems.append(f"RAM: tile buffer {plan.tile_buffer_bytes} B + arena {plan.arena_bytes} B + stack "
                        f"estimate {plan.stack_estimate_bytes} B = {plan.peak_ram_bytes} B exceeds the SRAM "
                        f"budget of {board.sram_budget_bytes} B (fewer channels or tokens, int4 activations, or "
                        f"an `xip` plan, which needs no tile buffer)")
    if problems:
        raise BudgetError(f"model does not fit board {board.name}: " + "; ".join(problems))
