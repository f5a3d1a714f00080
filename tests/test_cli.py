"""The CLI's parsing and messages, run in this process (argparse and the dispatch, not a new interpreter per
case); the CLI as a separate process is exercised where the process boundary matters (test_boards, test_plan)."""
import contextlib
import io
from types import SimpleNamespace

import pytest

from hostside.cli import main

SUBCOMMANDS = ["data", "train", "export", "plan", "inspect", "render", "build", "flash", "bench", "demo", "boards", "eval",
               "mlperf", "compress", "report"]


def pqlr(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as exc:                 # --help and argparse errors
            rc = exc.code if isinstance(exc.code, int) else 2
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())


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


def test_train_model_options(trained_pipeline, tmp_path):
    """--set passes model options through (literals parsed); an unknown one names the known options."""
    import torch
    corpus = str(trained_pipeline["corpus"])
    r = pqlr("train", "--corpus", corpus, "--model", "dscnn", "--epochs", "1", "--set", "channels=8",
             "--set", "activation=relu6", "--set", "stem_kernel=(3, 3)", "--out", str(tmp_path / "m.pt"))
    assert r.returncode == 0, r.stderr
    cfg = torch.load(tmp_path / "m.pt", weights_only=False)["config"]
    assert cfg["channels"] == 8 and cfg["activation"] == "relu6" and tuple(cfg["stem_kernel"]) == (3, 3)
    r = pqlr("train", "--corpus", corpus, "--epochs", "1", "--set", "nosuch=1", "--out", str(tmp_path / "n.pt"))
    assert r.returncode == 2 and "nosuch" in r.stderr and "channels" in r.stderr
    r = pqlr("train", "--corpus", corpus, "--epochs", "1", "--set", "channels", "--out", str(tmp_path / "n.pt"))
    assert r.returncode == 2 and "KEY=VALUE" in r.stderr
