import struct
import subprocess
import sys

import numpy as np
import pytest

from hostside.artifact import HEADER_SIZE, LAYER_SIZE, read_model_bin
from hostside.errors import ArtifactError
from hostside.reference import run

from conftest import random_inputs


def test_round_trip_is_exact(small_model):
    path, art = small_model
    again = read_model_bin(path)
    assert again.model_sha256 == art.model_sha256
    for a, b in zip(art.graph.layers, again.graph.layers):
        assert a.op == b.op and a.in_shape == b.in_shape and a.out_shape == b.out_shape
        if a.weights is not None:
            assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
            assert np.array_equal(a.multiplier, b.multiplier) and np.array_equal(a.shift, b.shift)
    for x in random_inputs(art.graph, 5):
        assert np.array_equal(run(art.graph, x), run(again.graph, x))
    assert path.with_suffix(".json").is_file()


@pytest.mark.parametrize("cut", [0, 3, HEADER_SIZE - 1, HEADER_SIZE + 10, -1])
def test_truncated(small_model, cut):
    data = small_model[0].read_bytes()
    with pytest.raises(ArtifactError):
        read_model_bin(data[:cut] if cut >= 0 else data[:-1])


def test_corruptions_are_named(small_model):
    data = bytearray(small_model[0].read_bytes())
    bad = bytearray(data); bad[0:4] = b"XXXX"
    with pytest.raises(ArtifactError, match="magic"):
        read_model_bin(bad)
    bad = bytearray(data); bad[4] = 9
    with pytest.raises(ArtifactError, match="version|CRC"):
        read_model_bin(bad)
    bad = bytearray(data); bad[-1] ^= 0xFF
    with pytest.raises(ArtifactError, match="SHA-256"):
        read_model_bin(bad)
    bad = bytearray(data); bad[60] ^= 1
    with pytest.raises(ArtifactError, match="header CRC"):
        read_model_bin(bad)


def test_fuzz_only_project_errors(small_model):
    """Mutated and truncated files: ArtifactError or success, nothing else (issue 5 scales this up)."""
    data = small_model[0].read_bytes()
    rng = np.random.default_rng(0)
    for i in range(3000):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        if i % 3 == 0:
            b = b[: int(rng.integers(0, len(b)))]
        try:
            read_model_bin(bytes(b))
        except ArtifactError as exc:
            assert_named_check(exc)
    read_model_bin(data)                                  # and the valid file still reads


def assert_named_check(exc: ArtifactError) -> None:
    """A rejection must come from one of the reader's named checks, not from the catch-all that turns a
    reader crash (IndexError, struct.error…) into ArtifactError("malformed (…)")."""
    assert "malformed (" not in str(exc), f"the reader crashed instead of a check firing: {exc}"


def test_fuzz_with_valid_checksums(small_model):
    """Corrupt the layer table but fix up hash and CRC, so the structural checks must catch it."""
    import hashlib
    import zlib
    data = small_model[0].read_bytes()
    rng = np.random.default_rng(1)
    accepted = rejected = 0
    for _ in range(1500):
        b = bytearray(data)
        pos = HEADER_SIZE + int(rng.integers(0, LAYER_SIZE * 3))
        b[pos] = int(rng.integers(0, 256))
        b[16:48] = hashlib.sha256(bytes(b[48:HEADER_SIZE - 4]) + bytes(b[HEADER_SIZE:])).digest()
        b[HEADER_SIZE - 4:HEADER_SIZE] = struct.pack("<I", zlib.crc32(bytes(b[:HEADER_SIZE - 4])))
        try:
            read_model_bin(bytes(b))
            accepted += 1
        except ArtifactError as exc:
            assert_named_check(exc)
            rejected += 1
    assert rejected > 0 and read_model_bin(data).model_sha256 == small_model[1].model_sha256


def test_a_crashing_reader_fails_the_fuzz_check(small_model, monkeypatch):
    """The fuzz tests above can fail: a reader that crashes is caught by assert_named_check."""
    from hostside import artifact
    monkeypatch.setattr(artifact, "_parse", lambda data, sha: [][1])
    with pytest.raises(ArtifactError) as e:
        read_model_bin(small_model[0].read_bytes())
    with pytest.raises(AssertionError, match="crashed"):
        assert_named_check(e.value)


def test_cli_corrupt_model_is_one_line(small_model, tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(small_model[0].read_bytes()[:50])
    p = subprocess.run([sys.executable, "-m", "hostside.cli", "inspect", str(bad)], capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1
    assert "truncated" in p.stderr


def test_cli_inspect(small_model):
    p = subprocess.run([sys.executable, "-m", "hostside.cli", "inspect", str(small_model[0])],
                       capture_output=True, text=True)
    assert p.returncode == 0 and small_model[1].model_sha256 in p.stdout and "dwconv2d" in p.stdout


@pytest.mark.parametrize("rows", [256, 300, 512])
def test_pools_over_256_rows_round_trip(tmp_path, rows):
    """A layer's kernel size no longer fits a byte for a DS-CNN on ≥ 256 feature rows (or a transformer's
    mean over 256–512 tokens): format 3 stores it in 16 bits, and the reference agrees after the round trip."""
    from hostside.artifact import write_model_bin
    from hostside.boards import load_board
    from hostside.plan import make_plan
    from conftest import random_graph
    _, g, _ = random_graph(5, input_shape=(rows, 4), channels=4, blocks=1, stem_kernel=(3, 3), stem_stride=(1, 1))
    assert max(max(L.kernel) for L in g.layers) >= 256
    board = load_board("host")
    art = write_model_bin(tmp_path / "m.bin", g, make_plan(g, board))
    again = read_model_bin(tmp_path / "m.bin")
    assert [L.kernel for L in again.graph.layers] == [L.kernel for L in g.layers]
    xs = random_inputs(g, 2)
    for x in xs:
        assert np.array_equal(run(g, x), run(again.graph, x))
    assert art.model_sha256 == again.model_sha256
    if rows == 300:                               # and the C runtime (16-bit fields in pqlr_layer_t) agrees
        from hostside import api
        res = api.run_on_board("host", api.build("host", api.render(tmp_path / "m.bin", "host", tmp_path / "fw")),
                               tmp_path / "m.bin", xs)
        assert np.array_equal(np.array(res.outputs), np.stack([run(g, x) for x in xs]).astype(np.int64))


def test_an_older_format_is_refused_with_the_reason(small_model):
    import zlib
    data = bytearray(small_model[0].read_bytes())
    data[4:6] = (2).to_bytes(2, "little")
    data[HEADER_SIZE - 4: HEADER_SIZE] = zlib.crc32(bytes(data[: HEADER_SIZE - 4])).to_bytes(4, "little")
    with pytest.raises(ArtifactError, match="format version 2 is older .* 16 bits.*pqlr export"):
        read_model_bin(bytes(data))
