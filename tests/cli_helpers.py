"""Helpers shared by the tests that drive the CLI or a fresh interpreter."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from fer_edge.cli import main


def run_classify(capsys, *args) -> tuple[int, str, str]:
    """`fer-edge classify ARGS` in this process: (exit status, stdout, stderr)."""
    rc = main(["classify", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def run_python_ok(code: str, marker: str, timeout: int = 120) -> None:
    """Run `code` in a fresh interpreter; it must exit 0 and print `marker` last."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == marker


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
