"""benchmarks/training/run.py: a subset packed from a corpus trains the same way on a machine without it, each
configuration reports its epochs, and a teacher ensemble is timed with the student."""
import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "training" / "run.py"


def _run(*args):
    p = subprocess.run([sys.executable, str(RUN), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_a_packed_subset_times_the_training_loop_with_and_without_teachers(trained_pipeline, tmp_path):
    sub = tmp_path / "subset.npz"
    _run("--corpus", trained_pipeline["corpus"], "--clips", 20, "--pack", sub)
    out = tmp_path / "r.json"
    text = _run("--data", sub, "--repeat", 2, "--epochs", 2, "--teachers", "0,2", "--label", "t", "--out", out)
    r = json.loads(out.read_text())
    assert [row["teachers"] for row in r["rows"]] == [0, 2]
    for row in r["rows"]:
        assert row["clips"] == 40 and row["device"] == ("cuda" if r["machine"]["cuda"] else "cpu")
        assert row["epoch_s"] > 0 and row["clips_per_s"] == row["clips"] / row["epoch_s"]
    assert "| t | " in text and not (RUN.parent / "results-t.json").exists()     # --out elsewhere: nothing beside it


def test_it_refuses_a_missing_corpus_and_a_single_epoch_before_any_work(tmp_path):
    for args, says in ((["--corpus", tmp_path / "none"], "no corpus; run `make demo`"),
                       (["--data", tmp_path / "none.npz", "--epochs", 1], "--epochs: at least 2")):
        p = subprocess.run([sys.executable, str(RUN), *map(str, args)], capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and says in p.stderr
