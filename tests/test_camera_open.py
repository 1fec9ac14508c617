"""A camera that is not there (edge/sources.open_capture): our one line says so, and OpenCV's own
log lines ("[ WARN:0@...] global cap_v4l.cpp ... can't open camera by index") do not reach
stderr, from the API (serve's live source reads the same way) as from classify."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

BIN = Path(sys.executable).parent


def _absent_camera() -> int:
    return next(i for i in range(63, 0, -1) if not Path(f"/dev/video{i}").exists())


def test_a_camera_that_is_not_there_is_our_one_line_not_opencvs():
    index = _absent_camera()
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys, cv2
        from fer_edge.edge import sources
        target = "camera:" + sys.argv[1]
        level = cv2.utils.logging.getLogLevel()
        print([item.error for item in sources.video_items(target, target)])
        print(cv2.utils.logging.getLogLevel() == level)
        """), str(index)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["['cannot open this camera']", "True"]   # level put back
    assert r.stderr == ""                          # no "[ WARN:0@...] global cap_v4l.cpp" lines
    exe = BIN / "fer-edge"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fer_edge.cli"]
    cli = subprocess.run(cmd + ["classify", f"camera:{index}"], capture_output=True, text=True,
                         timeout=60)
    assert cli.returncode == 1 and cli.stderr.splitlines() == [
        f"fer-edge: error: camera:{index}: cannot open this camera",
        "fer-edge: error: 1 of 1 input could not be processed (0 done, 0 faces)"]
