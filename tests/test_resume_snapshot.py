"""A training longer than a machine's uptime: `train --snapshot DIR` keeps what --resume needs in a
folder of a git repository after every epoch; the training is killed mid-run (SIGKILL, no clean
stop), the snapshot committed, the repository cloned afresh, and `train --resume --snapshot` on
the clone, into an empty run folder, finishes the run: the same epochs and, within noise, the same
result as a training that was never stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth import make_tree

BIN = Path(sys.executable).parent
EPOCHS = 5


def fer_edge(*args, cwd=None, **kw):
    exe = BIN / "fer-edge"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fer_edge.cli"]
    return cmd + [str(a) for a in args]


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def history(run: Path) -> list[dict]:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def epoch_of(folder: Path) -> int:
    try:
        return json.loads((folder / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("snapdata")
    make_tree(root, per_split={"train": 120, "val": 20, "test": 10})
    return root


@pytest.mark.slow
def test_a_killed_training_resumes_from_a_fresh_clone(data, tmp_path):
    env = {**os.environ, "FER_EDGE_CACHE": str(tmp_path / "cache")}
    common = ["--arch", "tiny", "--epochs", EPOCHS, "--batch-size", 8, "--verbose", 2]
    # the reference: never stopped
    ref = tmp_path / "ref"
    subprocess.run(fer_edge("train", "--data", data, "--out", ref, *common), env=env,
                   check=True, capture_output=True, timeout=600)

    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    snap = repo / "snapshots" / "tiny"
    first = tmp_path / "machine1"
    proc = subprocess.Popen(fer_edge("train", "--data", data, "--out", first, "--snapshot", snap,
                                     *common), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while epoch_of(snap) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)                           # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert not (first / "metrics.json").exists(), "the run ended before it was killed"
    stopped_at = epoch_of(snap)
    assert 2 <= stopped_at < EPOCHS

    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "snapshot", cwd=repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    second = tmp_path / "machine2"          # a fresh machine: no run folder at all
    r = subprocess.run(fer_edge("train", "--resume", "--out", second,
                                "--snapshot", clone / "snapshots" / "tiny"),
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"takes epoch {stopped_at} from the snapshot" in r.stderr
    assert f"resuming {second} at epoch {stopped_at + 1}" in r.stdout

    resumed, uninterrupted = history(second), history(ref)
    assert [row["epoch"] for row in resumed] == [str(e) for e in range(EPOCHS)]
    for a, b in zip(resumed, uninterrupted):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=0.05, abs=0.02)
        assert float(a["val_accuracy"]) == pytest.approx(float(b["val_accuracy"]), abs=0.1)
    done = json.loads((second / "metrics.json").read_text())
    base = json.loads((ref / "metrics.json").read_text())
    assert done["epochs_done"] == base["epochs_done"] == EPOCHS
    assert done["splits"]["val"]["top1"] == pytest.approx(base["splits"]["val"]["top1"],
                                                          abs=0.1)
    # the snapshot in the clone kept up with the run it continued
    assert epoch_of(clone / "snapshots" / "tiny") == EPOCHS


def test_a_snapshot_folder_is_not_overwritten_without_force(data, tmp_path, capsys):
    from fer_edge.cli import main

    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "state.json").write_text("{}")
    code = main(["train", "--data", str(data), "--arch", "tiny", "--out", str(tmp_path / "r"),
                 "--snapshot", str(snap), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "already holds a snapshot; pass --resume" in err
    assert not (tmp_path / "r").exists()


def test_resume_from_an_empty_snapshot_is_one_line(tmp_path, capsys):
    from fer_edge.cli import main

    (tmp_path / "snap").mkdir()
    code = main(["train", "--resume", "--out", str(tmp_path / "r"), "--snapshot",
                 str(tmp_path / "snap")])
    err = capsys.readouterr().err
    assert code == 2 and "nothing to resume there (no state.json / last.keras)" in err
