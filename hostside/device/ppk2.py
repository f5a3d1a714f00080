"""Current from a host-side Nordic Power Profiler Kit II (the optional extra pqlr[power]: ppk2-api).

The PPK2 samples the board's supply (as an ampere meter in series, or as the source at `source_mv`) in a
background thread while the benchmark runs. The figure reported is the mean over the run — inferences
and the serial transfers between them — which is what the PPK2 can attribute without a trigger line;
the samples are kept as the current trace."""
from __future__ import annotations

import threading
import time

from ..errors import DeviceError, PqlrError


class Ppk2Sampler:
    def __init__(self, port: str, mode: str = "ampere", source_mv: int = 3300, api=None):
        if api is None:
            try:
                from ppk2_api.ppk2_api import PPK2_API
            except ImportError:
                raise PqlrError("PPK2 support needs the optional extra: pip install 'pqlr[power]' (ppk2-api)") from None
            try:
                api = PPK2_API(port, timeout=1, write_timeout=1, exclusive=True)
            except Exception as exc:
                raise DeviceError(f"cannot open the PPK2 on {port}: {exc}") from None
        self.ppk, self.mode, self.source_mv = api, mode, source_mv
        self.samples: list[float] = []            # µA
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Ppk2Sampler":
        self.ppk.get_modifiers()
        if self.mode == "source":
            self.ppk.use_source_meter()
            self.ppk.set_source_voltage(self.source_mv)
            self.ppk.toggle_DUT_power("ON")
        else:
            self.ppk.use_ampere_meter()
        self.ppk.start_measuring()
        self._thread = threading.Thread(target=self._run, name="ppk2-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            data = self.ppk.get_data()
            if data:
                samples, _ = self.ppk.get_samples(data)
                now = time.monotonic()
                self.samples.extend(samples)
                self.times.extend([now] * len(samples))
            else:
                time.sleep(0.001)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            self.ppk.stop_measuring()
        except Exception:
            pass

    def mean_ma(self) -> float | None:
        return sum(self.samples) / len(self.samples) / 1000.0 if self.samples else None

    def trace_ma(self, points: int = 200) -> list[float]:
        """The samples averaged into at most `points` bins (mA), for the report's current plot."""
        n = len(self.samples)
        if not n:
            return []
        step = max(1, n // points)
        return [sum(self.samples[i: i + step]) / len(self.samples[i: i + step]) / 1000.0 for i in range(0, n, step)]
