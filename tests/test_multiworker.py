"""`fer-edge train --strategy multiworker`: two worker processes on 127.0.0.1 train `tiny`, the
chief alone writes the run folder, both hold the same model, and --resume continues the run."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from fer_edge.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def two_workers(tmp_path, *args) -> list[subprocess.CompletedProcess]:
    """`fer-edge train ARGS --strategy multiworker` as worker 1 and worker 0 (the chief)."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(2)]
    scratch = tmp_path / "worker_tmp"
    scratch.mkdir(exist_ok=True)
    procs = []
    for index in (1, 0):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(scratch),
               "TF_CONFIG": json.dumps({"cluster": {"worker": hosts},
                                        "task": {"type": "worker", "index": index}})}
        cmd = [sys.executable, "-m", "fer_edge.cli", "train", *map(str, args),
               "--strategy", "multiworker", "--verbose", "2"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    done = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    assert not any(scratch.iterdir()), "a worker left its scratch run folder behind"
    return done


def both_ok(chief, worker) -> None:
    assert chief.returncode == 0 and worker.returncode == 0, \
        chief.stderr[-1500:] + worker.stderr[-1500:]


def epoch_lines(out: str) -> list[str]:
    # "Epoch 1/1 - 6s - accuracy: ..." without the seconds, which differ between workers
    return [re.sub(r" - \d+s - ", " - ", line) for line in out.splitlines()
            if line.startswith("Epoch ") and " - " in line]


@pytest.mark.slow
def test_two_workers_train_tiny_then_resume(synth_data, tmp_path):
    out = tmp_path / "run"
    worker, chief = two_workers(tmp_path, "--data", synth_data, "--arch", "tiny", "--out", out,
                                "--epochs", "1", "--track-test")
    both_ok(chief, worker)
    assert "worker 0 of 2 machines (chief: writes the run folder)" in chief.stderr
    assert "worker 1 of 2 machines" in worker.stderr
    # the same weights and statistics on both: the same metrics, to the printed digit
    assert epoch_lines(chief.stdout) == epoch_lines(worker.stdout) != []
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["strategy"] == "multiworker" and cfg["replicas"] == 2
    assert (out / "best.keras").is_file() and (out / "last.keras").is_file()
    assert len((out / "history.csv").read_text().strip().splitlines()) == 2  # header + epoch 1

    worker, chief = two_workers(tmp_path, "--out", out, "--resume", "--epochs", "2")
    both_ok(chief, worker)
    assert f"resuming {out} at epoch 2" in chief.stdout
    assert epoch_lines(chief.stdout) == epoch_lines(worker.stdout) != []
    rows = (out / "history.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [0, 1]
    assert json.loads((out / "state.json").read_text())["epoch"] == 2


def test_multiworker_without_tf_config_is_one_line_and_writes_nothing(synth_data, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    rc = main(["train", "--data", str(synth_data), "--arch", "tiny", "--out", str(out),
               "--strategy", "multiworker"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert err == ["fer-edge: error: --strategy multiworker needs TF_CONFIG (the cluster's "
                   "addresses and this machine's task); see the README's multi-machine section"]


@pytest.mark.parametrize("tf_config, says", [
    ("not json", "TF_CONFIG is not a cluster with this task in it"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
     "TF_CONFIG is not a cluster with this task in it"),
])
def test_bad_tf_config_is_one_line(synth_data, tmp_path, monkeypatch, capsys, tf_config, says):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    out = tmp_path / "run"
    rc = main(["train", "--data", str(synth_data), "--arch", "tiny", "--out", str(out),
               "--strategy", "multiworker"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists() and len(err) == 1 and says in err[0]


def test_multiworker_refuses_swa(synth_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    out = tmp_path / "run"
    rc = main(["train", "--data", str(synth_data), "--arch", "tiny", "--out", str(out),
               "--strategy", "multiworker", "--epochs", "3", "--swa-start", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert err == ["fer-edge: error: --swa-start is not supported with --strategy multiworker"]


@pytest.mark.slow
def test_two_workers_stop_together_on_the_time_budget(synth_data, tmp_path):
    out = tmp_path / "run"
    worker, chief = two_workers(tmp_path, "--data", synth_data, "--arch", "tiny", "--out", out,
                                "--epochs", "20", "--time-budget", "1s")
    both_ok(chief, worker)
    assert "time budget: stopping after epoch 1" in chief.stdout
    assert len(epoch_lines(chief.stdout)) == len(epoch_lines(worker.stdout)) == 1
