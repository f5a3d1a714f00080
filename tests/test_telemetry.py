import pytest

from hostside.errors import TelemetryError
from hostside.telemetry import encode, parse_line, parse_stream


def test_round_trip():
    line = encode("INFER", {"n": 3, "out": "-1,2,127", "instret": 123})
    r = parse_line(line)
    assert r.type == "INFER" and r.ints("out") == [-1, 2, 127] and r.int("instret") == 123


def test_noise_is_not_a_record():
    assert parse_line("ESP-ROM:esp32c6-20220919") is None
    assert parse_line("") is None


def test_bad_checksum_rejected():
    line = encode("INFER", {"n": 3, "out": "1,2"})
    tampered = line.replace("1,2", "1,3")
    with pytest.raises(TelemetryError, match="checksum"):
        parse_line(tampered)
    with pytest.raises(TelemetryError):
        parse_line(line[:-3])


def test_stream_counts_noise_and_bad_records():
    good = encode("HELLO", {"fw": "0.1.0", "proto": 1})
    lines = ["boot: hello", good, good.replace("0.1.0", "0.1.1"), "", "garbage@@", encode("DONE", {"n": 0}),
             good[: len(good) // 2]]
    recs, stats = parse_stream(lines)
    assert [r.type for r in recs] == ["HELLO", "DONE"]
    assert stats.bad_records == 2 and stats.noise_lines == 2


def test_record_inside_noise_prefix():
    """A record glued after boot garbage on the same line is still found."""
    r = parse_line("\x00\x00rst:0x1 " + encode("READY", {}))
    assert r.type == "READY"
