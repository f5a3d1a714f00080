"""Drive a board in MLPerf Tiny mode the way the EEMBC runner does: name, profile, db load, db <hex>,
infer N W; the timing is the difference of the two m-lap-us stamps around the N timed inferences."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DeviceError
from .transport import Transport


@dataclass
class MlperfRun:
    name: str = ""
    profile: list[str] = field(default_factory=list)
    inferences: int = 0
    warmup: int = 0
    lap_us: list[int] = field(default_factory=list)
    results: list[float] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def runtime_s(self) -> float:
        return (self.lap_us[1] - self.lap_us[0]) / 1e6

    @property
    def per_inference_ms(self) -> float:
        return 1000 * self.runtime_s / self.inferences


class MlperfHost:
    def __init__(self, transport: Transport, timeout: float = 120.0):
        self.t, self.timeout = transport, timeout

    def command(self, cmd: str) -> list[str]:
        """Send one command; return the reply lines up to m-ready. e- lines raise DeviceError."""
        self.t.write(cmd.encode() + b"%")
        out, error = [], None
        while True:
            line = self.t.readline(self.timeout)
            if line is None:
                raise DeviceError(f"no answer to {cmd!r} within {self.timeout:.0f} s (is the board in MLPerf mode?)")
            text = line.decode("ascii", errors="replace").strip()
            if not text:
                continue
            if text.startswith("e-"):
                error = DeviceError(f"the board answered {cmd!r} with {text}")
                continue                                    # its m-ready still follows
            if text == "m-ready":
                if error:
                    raise error
                return out
            if text.startswith("m-"):
                out.append(text)

    def drain(self) -> None:
        while self.t.readline(0.3) is not None:
            pass

    def run(self, x: np.ndarray, inferences: int, warmup: int, chunk: int = 64) -> MlperfRun:
        r = MlperfRun(inferences=inferences, warmup=warmup)
        self.drain()                                   # a boot-time m-ready, if anyone heard it
        r.lines += self.command("name")
        r.name = next((l[len("m-name-["):-1] for l in r.lines if l.startswith("m-name-")), "")
        r.profile = self.command("profile")
        data = np.asarray(x, dtype=np.int8).tobytes()
        self.command(f"db load {len(data)}")
        for i in range(0, len(data), chunk):
            self.command("db " + data[i: i + chunk].hex())
        lines = self.command(f"infer {inferences} {warmup}")
        r.lines += lines
        r.lap_us = [int(l[len("m-lap-us-"):]) for l in lines if l.startswith("m-lap-us-")]
        res = next((l for l in lines if l.startswith("m-results-[")), None)
        if len(r.lap_us) != 2 or res is None:
            raise DeviceError(f"incomplete MLPerf answer to infer: {lines}")
        r.results = [float(v) for v in res[len("m-results-["):-1].split(",")]
        return r


def format_performance(r: MlperfRun, provenance: str) -> str:
    """The EEMBC runner's performance summary, with where the time came from."""
    return "\n".join([
        f"Performance results for window 1 ({r.name}, {provenance}):",
        f"  # Inferences :{r.inferences:>14d}",
        f"  Runtime      :{r.runtime_s:>14.3f} sec.",
        f"  Throughput   :{r.inferences / r.runtime_s if r.runtime_s > 0 else float('nan'):>14.3f} inf./sec.",
        f"  Latency      :{r.per_inference_ms:>14.3f} ms/inf.",
    ])
