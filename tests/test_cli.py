import subprocess
import sys

import pytest

SUBCOMMANDS = ["data", "train", "export", "plan", "inspect", "render", "build", "flash", "bench", "demo", "boards", "eval", "mlperf", "compress"]


def pqlr(*args):
    return subprocess.run([sys.executable, "-m", "hostside.cli", *args], capture_output=True, text=True)


def test_top_level_help():
    p = pqlr("--help")
    assert p.returncode == 0
    for cmd in SUBCOMMANDS:
        assert cmd in p.stdout


@pytest.mark.parametrize("cmd", SUBCOMMANDS + ["data synth"])
def test_subcommand_help(cmd):
    p = pqlr(*cmd.split(), "--help")
    assert p.returncode == 0, p.stderr
    assert "usage:" in p.stdout
    if cmd not in ("boards", "data"):
        assert "--" in p.stdout.split("options:")[-1]     # documents its options


def test_boards_command():
    p = pqlr("boards")
    assert p.returncode == 0 and "esp32c6" in p.stdout and "rv32-virt" in p.stdout
