"""`fer-edge batch` on Ray, run as users run it (the installed command, in its own process): the
same faces as `classify --format json`, a rerun that adds nothing, bad inputs in the errors
table, and a real two-node Ray cluster on 127.0.0.1 (a head and a second node started with
`ray start`) that loses a worker process mid-job and still finishes with exactly the rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("ray", reason="pip install 'fer-edge[ray]' (the test extra has it)")
pd = pytest.importorskip("pandas")

from cli_helpers import free_port  # noqa: E402
from synth import moving_faces_video  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
BIN = Path(sys.executable).parent


def run(*args, timeout=240, env=None, check=True):
    exe = BIN / "fer-edge"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fer_edge.cli"]
    r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, **(env or {})})
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Images (faces at several sizes, mirrored, one without a face) in two folders, a 3 s
    video of two moving faces, a corrupt image and a truncated video."""
    root = tmp_path_factory.mktemp("archive")
    img = cv2.imread(str(ASTRONAUT))
    (root / "sub").mkdir()
    for i, scale in enumerate((1.0, 0.6, 0.35)):
        small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / f"astro_{i}.jpg"), small)
        cv2.imwrite(str(root / "sub" / f"mirror_{i}.png"), cv2.flip(small, 1))
    cv2.imwrite(str(root / "sub" / "blank.png"), np.full((200, 300, 3), 128, np.uint8))
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    y, x = 60, 200
    tile = img[y:y + 260, x:x + 260]
    clip = moving_faces_video(root / "clip.mp4", [tile, cv2.flip(tile, 1)],
                              [(60, 150, 20, 150), (360, 150, 420, 150)], frames=30, fps=10,
                              side=160)
    data = clip.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    return root


def classify_rows(archive: Path) -> dict:
    """{(file, frame): [(x, y, w, h, emotion), ...]} from classify --format json."""
    r = run("classify", archive, "--format", "json", check=False)
    assert r.returncode == 1     # the corrupt image and the truncated video
    rows = {}
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        rows[(rec["file"], rec.get("frame"))] = sorted(
            (*f["box"], f["emotion"]) for f in rec["faces"])
    return rows


def batch_rows(out: Path) -> dict:
    faces = pd.read_parquet(out / "faces")
    rows: dict = {}
    for rec in faces.itertuples():
        frame = None if pd.isna(rec.frame) else int(rec.frame)
        rows.setdefault((rec.file, frame), []).append(
            (int(rec.x), int(rec.y), int(rec.w), int(rec.h), rec.emotion))
    return {k: sorted(v) for k, v in rows.items()}


def same_faces(theirs: list, ours: list, pixels: int = 1) -> bool:
    return len(theirs) == len(ours) and all(
        a[4] == b[4] and max(abs(p - q) for p, q in zip(a[:4], b[:4])) <= pixels
        for a, b in zip(theirs, ours))


# A video's pieces are independent tasks, so each starts with a full detection where classify,
# reading the whole video, is on a cheap tracked frame: the same faces and emotions, boxes within
# the fast path's few pixels of a full detection (tests/test_video_path.py). Images: exact.
VIDEO_BOX_PIXELS = 4


@pytest.fixture(scope="module")
def local_job(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("job") / "out"
    first = run("batch", archive, "--out", out, "--segment", "1", "--images-per-task", "3",
                "--workers", "2", "--quiet")
    return out, json.loads(first.stdout)


def test_batch_faces_equal_classify(archive, local_job):
    out, summary = local_job
    expected = classify_rows(archive)
    got = batch_rows(out)
    with_faces = {k: v for k, v in expected.items() if v}
    assert set(got) == set(with_faces)
    for key, faces in with_faces.items():
        assert same_faces(faces, got[key], 1 if key[1] is None else VIDEO_BOX_PIXELS), key
    frames = {k[1] for k in expected if k[1] is not None}
    assert frames == set(range(30))                   # classify saw every frame of the clip
    assert {k[1] for k in got if k[1] is not None} == {k[1] for k in with_faces if k[1] is not None}
    assert summary["faces"] == sum(len(v) for v in got.values())
    assert summary["inputs"] == 10 and summary["failed"] == 2 and summary["done"] == 8


def test_every_bad_input_is_in_the_errors_table(archive, local_job):
    out, _ = local_job
    errors = pd.read_parquet(out / "errors")
    assert sorted(Path(f).name for f in errors["file"]) == ["corrupt.jpg", "truncated.mp4"]
    assert all(errors["reason"].str.len() > 0)


def test_videos_summary_per_video_and_track(archive, local_job):
    out, _ = local_job
    videos = pd.read_parquet(out / "videos")
    expected = classify_rows(archive)
    seen = {k[1] for k, v in expected.items() if k[1] is not None and v}
    whole = videos[videos["track"].isna()]
    assert len(whole) == 1 and int(whole["frames"].iloc[0]) == len(seen)
    assert abs(whole.filter(like="share_").iloc[0].sum() - 1) < 1e-6
    per_track = videos[videos["track"].notna()]
    # tracks are numbered within each one-second segment, from 1 again
    assert sorted(per_track["segment"].unique().tolist()) == [0, 1, 2]
    assert per_track.groupby("segment")["track"].min().tolist() == [1, 1, 1]
    faces = pd.read_parquet(out / "faces")
    video = faces[faces["frame"].notna()]
    assert per_track["frames"].sum() == len(video)      # each face in one track's frames
    # the whole video's row is the summary classify prints for the same faces (edge/track.py)
    from fer_edge.edge.track import summarize

    r = run("classify", archive / "clip.mp4", "--format", "json")
    ours = next(g for g in summarize(json.loads(line) for line in r.stdout.splitlines())
                if g.track is None)
    row = whole.iloc[0]
    assert (int(row["frames"]), row["dominant"]) == (ours.frames, ours.dominant)
    assert (row["from"], row["to"]) == pytest.approx((ours.first, ours.last))
    for lab, share in ours.shares([c[len("share_"):] for c in videos.filter(like="share_")]).items():
        assert row[f"share_{lab}"] == pytest.approx(share)


def test_videos_summary_equals_one_over_every_face_at_once(local_job):
    """The videos table is merged from one part file (a segment) at a time; it equals the
    summary of every video face of the run read into memory at once (what batch did before)."""
    from fer_edge.edge.track import summarize_faces

    out, _ = local_job
    faces = pd.read_parquet(out / "faces")
    video = faces[faces["frame"].notna()]
    assert video["segment"].nunique() == 3                 # a video of three parts, merged
    labels = [c.removeprefix("score_") for c in faces.columns if c.startswith("score_")]
    at_once = summarize_faces(zip(video["file"], video["segment"].astype(int),
                                  video["track"].astype(int), video["frame"].astype(int),
                                  video["time"], video["emotion"]))
    expected = [(g.file, g.segment, g.track, g.frames, g.first, g.last, g.dominant,
                 *(g.shares(labels)[lab] for lab in labels)) for g in at_once]
    table = pd.read_parquet(out / "videos")
    got = [(r["file"], None if pd.isna(r["segment"]) else int(r["segment"]),
            None if pd.isna(r["track"]) else int(r["track"]), int(r["frames"]), r["from"],
            r["to"], r["dominant"], *(r[f"share_{lab}"] for lab in labels))
           for r in table.to_dict("records")]
    assert got == expected


def test_a_rerun_adds_nothing(archive, local_job):
    out, summary = local_job
    before = {p.name: p.stat().st_mtime_ns for p in (out / "faces").iterdir()}
    again = json.loads(run("batch", archive, "--out", out, "--segment", "1",
                           "--images-per-task", "3", "--quiet").stdout)
    assert again["tasks_this_run"] == 0 and again["faces"] == summary["faces"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "faces").iterdir()} == before


def test_a_rerun_with_other_options_is_refused(archive, local_job):
    out, _ = local_job
    r = run("batch", archive, "--out", out, "--segment", "2", check=False)
    assert r.returncode == 2 and "--segment" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------- a two-node Ray cluster

@pytest.fixture
def cluster(tmp_path):
    """A head and a second node, each its own `ray start` (one CPU each), on 127.0.0.1."""
    ray = str(BIN / "ray")
    port = free_port()
    # Ray's token authentication (on by default for `ray start --head`): every process of the
    # cluster, and the job, read the token the head wrote in ~/.ray/auth_token
    env = {**os.environ, **CLUSTER_ENV}
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port",
                    str(port), "--include-dashboard", "false", *common], check=True, env=env,
                   capture_output=True, timeout=120)
    try:
        subprocess.run([ray, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address",
                        "127.0.0.1", *common], check=True, env=env, capture_output=True,
                       timeout=120)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


CLUSTER_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}


def _actor_pids() -> list[int]:
    r = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


@pytest.mark.slow
def test_two_nodes_lose_a_worker_and_finish_with_exactly_the_rows(archive, local_job, cluster,
                                                                   tmp_path):
    out = tmp_path / "cluster"
    exe = BIN / "fer-edge"
    job = subprocess.Popen(
        [str(exe), "batch", archive, "--out", out, "--segment", "1", "--images-per-task", "1",
         "--address", cluster, "--workers", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **CLUSTER_ENV})
    try:
        deadline = time.monotonic() + 120
        killed = None
        while killed is None and time.monotonic() < deadline and job.poll() is None:
            done = len(list((out / "_tasks").glob("*.json"))) if (out / "_tasks").is_dir() else 0
            pids = _actor_pids()
            if done >= 1 and pids:
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.2)
        stdout, stderr = job.communicate(timeout=240)
    finally:
        if job.poll() is None:
            job.kill()
    assert killed is not None, "no worker was running to be killed"
    assert job.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)          # stdout holds the result only; Ray's lines: stderr
    assert "A worker died or was killed" in stderr    # Ray saw the loss, and retried
    tasks = len(list((out / "_tasks").glob("*.json")))
    assert summary["tasks"] == tasks == 8 + 3     # 8 image files, 3 one-second video segments
    assert batch_rows(out) == batch_rows(local_job[0])
    assert len(pd.read_parquet(out / "faces")) == summary["faces"]


def test_inputs_from_folders_globs_manifests_and_missing_paths(archive, tmp_path):
    from fer_edge.batch.inputs import expand, plan

    manifest = tmp_path / "list.csv"
    manifest.write_text("path,note\n" + f"{archive}/astro_0.jpg,a\n" + "elsewhere.jpg,b\n")
    (tmp_path / "elsewhere.jpg").write_bytes((archive / "astro_1.jpg").read_bytes())
    files, missing, names = expand([str(archive / "sub"), str(manifest),
                                    str(tmp_path / "gone.png"), str(archive / "sub")],
                                   glob="mirror_*")
    assert [Path(f).name for f in files] == ["mirror_0.png", "mirror_1.png", "mirror_2.png",
                                             "astro_0.jpg", "elsewhere.jpg"]
    assert names[files[0]] == f"{archive / 'sub'}/mirror_0.png"     # as the command named it
    assert missing == [{"file": str(tmp_path / "gone.png"), "reason": "not found"}]
    tasks, errors = plan(files + [str(archive / "clip.mp4"), str(archive / "truncated.mp4")],
                         {**names, str(archive / "clip.mp4"): "clip.mp4",
                          str(archive / "truncated.mp4"): "truncated.mp4"}, 2, 1.0)
    assert [(t.kind, len(t.files), t.start, t.stop) for t in tasks] == [
        ("images", 2, 0, None), ("images", 2, 0, None), ("images", 1, 0, None),
        ("video", 1, 0, 10), ("video", 1, 10, 20), ("video", 1, 20, None)]
    assert errors == [{"file": "truncated.mp4", "reason": "cannot open this video"}]
    assert len({t.id for t in tasks}) == len(tasks)


def test_a_manifest_without_a_path_column_is_one_line(tmp_path):
    (tmp_path / "m.csv").write_text("file\na.jpg\n")
    r = run("batch", tmp_path / "m.csv", "--out", tmp_path / "o", check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"fer-edge: error: {tmp_path / 'm.csv'}: a manifest needs a `path` column (it has file)"]
    assert not (tmp_path / "o").exists()
