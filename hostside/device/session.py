"""Drive a board running pqlr firmware over any transport: handshake, model-hash check, inferences,
RAM report. Noise lines and bad records are counted and skipped, never parsed as data."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import DeviceError, DeviceReset, ModelHashMismatch, TelemetryError
from ..telemetry import PROTO_VERSION, Record, StreamStats, parse_line
from .transport import Transport


@dataclass
class SessionResult:
    hello: dict
    outputs: list[list[int]] = field(default_factory=list)
    instret: list[int | None] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)
    flash_bytes: list[int] = field(default_factory=list)
    current_ua: list[int] = field(default_factory=list)
    layer_instret: list[list[int]] = field(default_factory=list)
    layer_cycles: list[list[int]] = field(default_factory=list)
    layer_flash: list[list[int]] = field(default_factory=list)
    ram: dict = field(default_factory=dict)
    stats: StreamStats = field(default_factory=StreamStats)
    first_mismatch: dict | None = None
    frontend_instret: list = field(default_factory=list)
    frontend_cycles: list = field(default_factory=list)
    resets: int = 0
    retries: int = 0
    complete: bool = False


def _truncate(res: SessionResult, n: int) -> None:
    """Keep the first n inferences' results (a stream that must run again from its start)."""
    for name in ("outputs", "instret", "cycles", "flash_bytes", "layer_instret", "layer_cycles", "layer_flash"):
        del getattr(res, name)[n:]
    for name in ("current_ua", "frontend_instret", "frontend_cycles"):      # one per inference when present
        lst = getattr(res, name)
        if len(lst) > n:
            del lst[n:]


class _RecordLost(Exception):
    """A record was rejected (bad checksum); the answer it carried is lost."""


class _NotRun(Exception):
    """The board did not run the request a replay asked about (ERR not_run)."""


class Session:
    """n_outputs: the model's output count, checked in every INFER record (None: not checked).
    retries: how often a lost answer (a record rejected by its checksum, framing or fields) is asked again.
    stateful: the model keeps state between inferences (a streaming model): a lost answer is asked for again with
    'r' (replay; the board sends its kept answer) instead of running the input again, which would step it twice."""

    def __init__(self, transport: Transport, expected_sha256: str, timeout: float = 60.0, max_resets: int = 2,
                 n_outputs: int | None = None, retries: int = 2, stateful: bool = False):
        self.stateful = stateful
        self.t = transport
        self.expected = expected_sha256
        self.timeout = timeout
        self.max_resets = max_resets
        self.n_outputs = n_outputs
        self.retries = retries
        self.stats = StreamStats()
        self._resync = False
        self._sent = 0                      # request numbers: the host's, never reused within a session

    def _lost(self, why: str) -> None:
        """A record that framed and checksummed but cannot be used: counted, and the answer is asked again."""
        self.stats.bad_records += 1
        self.stats.errors.append(why)
        raise _RecordLost(why)

    def _ask(self, what: str, attempt_fn, on_lost=None):
        """Run attempt_fn until it returns, re-asking after a lost record, at most 1 + retries times; on_lost()
        is called for each lost answer."""
        for attempt in range(self.retries + 1):
            try:
                return attempt_fn()
            except (_RecordLost, TelemetryError) as exc:
                if isinstance(exc, TelemetryError):
                    self.stats.bad_records += 1
                    self.stats.errors.append(str(exc))
                if on_lost:
                    on_lost()
                if attempt == self.retries:
                    raise DeviceError(f"{self.retries + 1} unusable answers in a row from {self.t.name} ({what}: "
                                      f"{exc}); check the cable and the baud rate") from None

    def _next(self, want: set[str], lost_ok: bool = False) -> Record:
        """The next record of a wanted type. lost_ok: a rejected (corrupt) record raises _RecordLost, so
        the caller can ask again instead of waiting for a record that will never come."""
        while True:
            line = self.t.readline(self.timeout)
            if line is None:
                raise DeviceError(f"no answer from {self.t.name} within {self.timeout:.0f} s "
                                  f"(waiting for {'/'.join(sorted(want))}); is it a pqlr board running this firmware?"
                                  + self.stats.console_tail())
            try:
                rec = parse_line(line)
            except TelemetryError as exc:
                self.stats.bad_records += 1
                self.stats.errors.append(str(exc))
                if lost_ok:
                    raise _RecordLost(str(exc)) from None
                continue
            if rec is None:
                self.stats.keep(line)           # kept: a panic backtrace is what a user needs to see
                continue
            self.stats.records += 1
            if rec.type in want:
                return rec
            if self._resync:
                continue                    # after a reset: stale answers and errors until HELLO
            if rec.type == "ERR":
                raise DeviceError(f"board error {rec.fields.get('code')}: {rec.fields}")
            if rec.type == "BOOT":
                raise DeviceReset("the board restarted mid-run (a BOOT record arrived unasked)"
                                  + self.stats.console_tail())
            # anything else unasked (a second HELLO/READY after a repeated 'h', a DONE after a repeated 'q')
            # is a stale answer: skipped

    def hello(self) -> dict:
        """Shake hands: HELLO (model hash, protocol), then READY or ERR. A lost HELLO or READY is asked for again
        ('h' again; the board answers each 'h' with both, and a stale second pair is skipped)."""
        self._resync = True                 # a BOOT record or stale answers may precede the HELLO

        def attempt():
            self.t.write(b"\nh\n")
            rec = self._next({"HELLO"}, lost_ok=True)
            proto = rec.int("proto")
            ready = self._next({"READY", "ERR"}, lost_ok=True)
            return rec, proto, ready
        rec, proto, ready = self._ask("handshake", attempt)
        self._resync = False
        if proto != PROTO_VERSION:
            raise TelemetryError(f"the board speaks telemetry protocol {rec.fields.get('proto')}, this host speaks "
                                 f"{PROTO_VERSION}: its firmware was built by another pqlr; build and flash it again "
                                 f"with this one (pqlr flash)")
        # the firmware checked its model partition at boot: READY, or ERR naming what is wrong
        if ready.type == "ERR":
            raise DeviceError(f"the board's model partition is not usable ({ready.fields.get('code')}): "
                              f"the app was built for model {ready.fields.get('expected', '?')}, the partition holds "
                              f"{ready.fields.get('found', '?')}; flash the model again (pqlr flash)")
        seen = rec.fields.get("model", "")      # the model the firmware runs (read from its partition)
        if seen != self.expected:
            raise ModelHashMismatch(f"refusing to report: the board runs model {seen}, but the artifact is "
                                    f"{self.expected}; flash this model (pqlr flash), or rebuild")
        return dict(rec.fields)

    def _next_numbered(self, want: set[str], n: int) -> Record:
        """The next wanted record answering request n; answers to earlier (retried) requests are skipped. The
        board's ERR bad_checksum / bad_input for request n (the command was damaged on the way) is a lost
        answer: the caller sends the request again under a new number."""
        while True:
            rec = self._next(want | {"ERR"}, lost_ok=True)
            if rec.type == "ERR":
                if rec.fields.get("code") in ("bad_checksum", "bad_input"):
                    # one request is in flight at a time, so this is ours, whatever number the damage left in it
                    self._lost(f"request {n} arrived damaged at the board ({rec.fields.get('code')}, "
                               f"n={rec.fields.get('n')})")
                if rec.fields.get("code") == "not_run" and rec.int("n", -1) == n:
                    raise _NotRun()
                if rec.fields.get("n") is not None:
                    continue                # about an earlier request
                raise DeviceError(f"board error {rec.fields.get('code')}: {rec.fields}")
            if rec.int("n", -1) == n:
                return rec

    def _command(self, letter: bytes, n: int, payload: bytes) -> bytes:
        """letter, the request number and the payload in hex, and a CRC-32 over both (app.c states the framing)."""
        crc = zlib.crc32(payload, zlib.crc32(struct.pack("<I", n)))
        return letter + f"{n:08x}".encode() + payload.hex().encode() + f"{crc:08x}".encode() + b"\n"

    def infer(self, x: np.ndarray, res: SessionResult, audio: bool = False) -> None:
        """One inference on an int8 input tensor, or (audio=True) on int16 samples through the board's
        front end. A lost INFER or LAYERS record (rejected, or not about this input) is not waited for: the
        input is sent again under a new request number, up to `retries` times."""
        data = np.asarray(x, dtype="<i2").tobytes() if audio else np.asarray(x, dtype=np.int8).tobytes()
        asked: list[int] = []            # request numbers that may have run on the board (stateful replays)

        def attempt():
            rec = None
            if self.stateful and asked:
                n = asked[-1]            # did the board run it? then its kept answer, not a second step
                self.t.write(self._command(b"r", n, b""))
                try:
                    rec = self._next_numbered({"INFER", "LAYERS"}, n)
                except _NotRun:
                    asked.clear()
                    rec = None
            if rec is None:
                n = self._sent
                self._sent += 1
                asked.append(n)
                self.t.write(self._command(b"a" if audio else b"i", n, data))
                rec = self._next_numbered({"INFER", "LAYERS"}, n)
            if rec.type != "INFER":
                raise _RecordLost("an INFER record was lost")
            lay = self._next_numbered({"LAYERS"}, n)     # both records, or neither, enter the results
            row = self._check_infer(rec, lay)
            if rec.int("in") != zlib.crc32(data):
                self._lost(f"INFER {n} was computed on another input (in={rec.fields.get('in')})")
            return row

        def lost():
            res.retries += 1
        row = self._ask("inference", attempt, on_lost=lost)
        out, instret, cycles, flash, current, fe, layers = row
        res.outputs.append(out)
        res.instret.append(instret)
        res.cycles.append(cycles)
        res.flash_bytes.append(flash)
        if current is not None:
            res.current_ua.append(current)
        if fe is not None:
            res.frontend_instret.append(fe[0])
            res.frontend_cycles.append(fe[1])
        res.layer_instret.append(layers[0])
        res.layer_cycles.append(layers[1])
        res.layer_flash.append(layers[2])

    def _check_infer(self, rec: Record, lay: Record):
        """Every field of an INFER/LAYERS pair, validated before anything enters the results."""
        out = rec.ints("out")
        if self.n_outputs is not None and len(out) != self.n_outputs:
            self._lost(f"INFER record with {len(out)} outputs; the model has {self.n_outputs}")
        if any(not -128 <= v <= 127 for v in out):
            self._lost(f"INFER record with an output outside int8: {out}")
        instret, cycles, flash = rec.int("instret"), rec.int("cycles"), rec.int("flash")
        current = rec.int("current_ua") if "current_ua" in rec.fields else None
        fe = (rec.int("fe_instret"), rec.int("fe_cycles")) if "fe_cycles" in rec.fields else None
        layers = (lay.ints("instret"), lay.ints("cycles"), lay.ints("flash"))
        return out, instret, cycles, flash, current, fe, layers

    def new_stream(self) -> None:
        """The next input begins a new stream ('n'): the board sets a streaming model's state back to where boot
        leaves it and answers STREAM. Idempotent, so a lost STREAM record is simply asked for again."""
        def attempt():
            n = self._sent
            self._sent += 1
            self.t.write(self._command(b"n", n, b""))
            self._next_numbered({"STREAM"}, n)
        self._ask("new stream", attempt)

    def dump(self, x: np.ndarray, layer: int) -> np.ndarray:
        """The firmware's output tensor of `layer` for input x (it runs the model up to that layer)."""
        def attempt():
            n = self._sent
            self._sent += 1
            self.t.write(self._command(b"d", n, bytes([layer]) + np.asarray(x, dtype=np.int8).tobytes()))
            rec = self._next_numbered({"DUMP"}, n)
            try:
                return np.frombuffer(bytes.fromhex(rec.fields["data"]), dtype=np.int8)
            except (KeyError, ValueError):
                self._lost(f"DUMP {n} without a hex data field")
        return self._ask(f"layer {layer} dump", attempt)

    def locate_mismatch(self, x: np.ndarray, graph) -> dict | None:
        """Compare every layer's output with the reference; name the first bad layer and index."""
        from ..reference import run
        _, tensors = run(graph, x, dump=True)
        for i, L in enumerate(graph.layers):
            want = tensors[i + 1].reshape(-1)
            got = self.dump(x, i)
            if len(got) != len(want) or not np.array_equal(got, want):
                bad = int(np.argmax(got != want)) if len(got) == len(want) else 0
                return {"layer": i, "name": L.name, "index": bad, "hwc": [int(v) for v in np.unravel_index(bad, L.out_shape)],
                        "expected": int(want[bad]), "got": int(got[bad]) if len(got) > bad else None}
        return None

    def finish(self, res: SessionResult) -> None:
        """RAM and DONE; a lost one is asked for again ('q' again: the board repeats both until it reads 'x')."""
        def attempt():
            self.t.write(b"q\n")
            ram = self._next({"RAM"}, lost_ok=True)
            values = {k: ram.int(k) for k in ram.fields}
            self._next({"DONE"}, lost_ok=True)
            return values
        res.ram = self._ask("RAM report", attempt)
        try:
            self.t.write(b"x")              # the board exits on it; its port may close under our feet
        except DeviceError:
            pass

    def run(self, inputs, reference_graph=None, on_inference=None, audio: bool = False,
            streams=None) -> SessionResult:
        """Run every input; with reference_graph, the first input whose output differs from the reference
        is replayed layer by layer and res.first_mismatch names the first bad layer and index.
        streams: for a stateful (streaming) model, the indices of the inputs that begin a new stream (a recording
        of their own: the board is sent 'n' before each); None: all the inputs are one stream.
        A board that restarts mid-run is detected by its BOOT record: the session shakes hands again
        (checking the model hash again) and resumes with the input it was on — for a stateful model, with the first
        input of the stream it was in (the restart emptied the state; that stream's outputs so far are dropped), so
        the outputs stay the ones an unbroken run gives — up to max_resets times.
        Any failure raises DeviceError with .partial: the results so far."""
        res = SessionResult(hello={})
        starts = sorted({int(i) for i in streams}) if streams is not None and self.stateful else []
        if starts and not 0 <= starts[0] <= starts[-1] < max(len(inputs), 1):
            raise ValueError(f"streams: start indices within 0…{len(inputs) - 1}, got {starts[0]}…{starts[-1]}")
        begins = set(starts)
        try:
            res.hello = self.hello()
            k = 0
            while k < len(inputs):
                try:
                    if k in begins:
                        self.new_stream()
                    self.infer(inputs[k], res, audio=audio)
                except DeviceReset:
                    res.resets += 1
                    if res.resets > self.max_resets:
                        raise DeviceError(f"the board restarted {res.resets} times; stopping after "
                                          f"{len(res.outputs)} of {len(inputs)} inferences"
                                          + self.stats.console_tail()) from None
                    self._resync = True
                    res.hello = self.hello()
                    if self.stateful:          # boot emptied the state: this stream again from its first input
                        k = max((i for i in starts if i <= k), default=0)
                        _truncate(res, k)
                    continue
                if on_inference:
                    on_inference(k)
                k += 1
        except DeviceError as exc:
            res.stats = self.stats
            exc.partial = res
            raise
        if reference_graph is not None and not audio and reference_graph.streaming:
            from ..reference.interpreter import Streamer
            s = Streamer(reference_graph)       # state carried through every input of a stream, as on the board
            for k, x in enumerate(inputs):
                if k in begins:
                    s.reset()
                if not np.array_equal(np.array(res.outputs[k]), s.step(x).astype(np.int64)):
                    res.first_mismatch = {"input": k, "note": "a streaming model: no layer-by-layer replay (a dump "
                                                              "would step its state)"}
                    break
        elif reference_graph is not None and not audio:
            from ..reference import run
            for k, x in enumerate(inputs):
                if not np.array_equal(np.array(res.outputs[k]), run(reference_graph, x).astype(np.int64)):
                    res.first_mismatch = {"input": k} | (self.locate_mismatch(x, reference_graph) or {})
                    break
        try:
            self.finish(res)
        except DeviceError as exc:
            res.stats = self.stats
            exc.partial = res
            raise
        res.stats = self.stats
        res.complete = True
        return res
