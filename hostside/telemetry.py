"""Telemetry protocol (version 2; the line marker stays @pqlr1): the device speaks records, not prose.

A record is one line:  @pqlr1 TYPE k=v k=v ... *XXXXXXXX
XXXXXXXX is the CRC-32 (zlib.crc32) of the text between '@' and ' *', lower-case hex. Values contain
no spaces; lists are comma-separated. Types: HELLO (first; fw, proto, board, model sha256), INFER (n,
out, instret, cycles, flash[, current_ua]), LAYERS (n, per-layer instret/cycles/flash), RAM (tile_buf,
arena, stack_hwm, stack_size), STREAM (n: a new stream began), ERR (code, ...), DONE (n).

parse_line is a pure function: a non-record line (boot log, noise) gives None; a record with a bad
checksum or bad framing raises TelemetryError (callers count and skip it). Records are found anywhere in a
line: after noise, and after a record cut off by a reset (the last whole record on the line wins). A line
that ends like a record (" *" and eight hex digits) but whose marker is damaged is a bad record, not noise,
so the caller knows an answer was lost and can ask again.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import re

from .errors import TelemetryError

PREFIX = "@pqlr1 "
PROTO_VERSION = 2
_TAIL = re.compile(r" \*[0-9a-fA-F]{8}$")


@dataclass(frozen=True)
class Record:
    type: str
    fields: dict

    def int(self, key: str, default=None):
        v = self.fields.get(key)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            raise TelemetryError(f"{self.type} record: {key}={v!r} is not an integer") from None

    def ints(self, key: str) -> list[int]:
        v = self.fields.get(key)
        try:
            return [] if not v else [int(x) for x in v.split(",")]
        except ValueError:
            raise TelemetryError(f"{self.type} record: {key}={v[:40]!r} is not a list of integers") from None


def encode(type_: str, fields: dict) -> str:
    """The host-side encoder (for tests and fakes): the same framing the firmware writes."""
    body = "pqlr1 " + type_ + "".join(f" {k}={v}" for k, v in fields.items())
    return f"@{body} *{zlib.crc32(body.encode()):08x}"


def _parse_record(line: str) -> Record:
    """One candidate starting at '@pqlr'."""
    if not line.startswith(PREFIX):
        raise TelemetryError(f"unsupported protocol in record {line[:40]!r} (this host speaks {PREFIX.strip()})")
    star = line.rfind(" *")
    if star < 0 or len(line) - star != 10:
        raise TelemetryError(f"record without checksum: {line[:60]!r}")
    body, crc = line[1:star], line[star + 2:]
    try:
        want = int(crc, 16)
    except ValueError:
        raise TelemetryError(f"bad checksum field {crc!r}") from None
    if zlib.crc32(body.encode("ascii", errors="replace")) != want:
        raise TelemetryError(f"checksum mismatch in record {line[:60]!r}")
    parts = body.split(" ")
    if len(parts) < 2 or not parts[1].isalpha():
        raise TelemetryError(f"record without a type: {line[:60]!r}")
    fields = {}
    for p in parts[2:]:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise TelemetryError(f"malformed field {p!r}")
        fields[k] = v
    return Record(parts[1], fields)


def parse_line(line: str | bytes) -> Record | None:
    if isinstance(line, bytes):
        line = line.decode("ascii", errors="replace")
    line = line.strip("\r\n\x00 ")
    starts = [m.start() for m in re.finditer("@pqlr", line)]
    if not starts:
        if _TAIL.search(line):
            raise TelemetryError(f"record with a damaged marker: {line[:60]!r}")
        return None
    error = None
    for a in reversed(starts):                 # the last whole record on the line
        try:
            return _parse_record(line[a:])
        except TelemetryError as exc:
            error = error or exc
    raise error


CONSOLE_KEEP = 200             # non-record lines kept (a panic backtrace is ~30 lines)


@dataclass
class StreamStats:
    records: int = 0
    noise_lines: int = 0
    bad_records: int = 0
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)     # the last CONSOLE_KEEP non-record lines, as sent

    def keep(self, line: bytes | str) -> None:
        """A non-record line (boot log, panic backtrace, a printf): counted and kept, not thrown away."""
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = text.rstrip("\r\n")
        if text.strip():
            self.noise_lines += 1
            self.console.append(text)
            del self.console[:-CONSOLE_KEEP]

    def console_tail(self, n: int = 12) -> str:
        """The last n console lines, for an error message ('' when the board printed nothing else)."""
        if not self.console:
            return ""
        return "; the board's last console lines:\n    " + "\n    ".join(self.console[-n:])


def parse_stream(lines) -> tuple[list[Record], StreamStats]:
    """Parse many lines: records kept, noise and bad records counted (pure)."""
    stats = StreamStats()
    records = []
    for line in lines:
        try:
            rec = parse_line(line)
        except TelemetryError as exc:
            stats.bad_records += 1
            stats.errors.append(str(exc))
            continue
        if rec is None:
            if str(line).strip():
                stats.keep(line)
            continue
        stats.records += 1
        records.append(rec)
    return records, stats
