"""`fer-edge batch`'s job: plan the tasks, skip the ones done, run the rest on a Ray Data actor
pool, write the per-video summary and report what was done."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from .. import options
from ..edge.fileio import sha256, write_json
from ..errors import FerEdgeError
from . import outputs
from .inputs import expand, plan
from .worker import CLASSIFIER_OPTIONS, VIDEO_OPTIONS, TaskWorker

JOB_FILE = "job.json"     # what the folder's rows were made with


def _job_options(given: dict) -> dict:
    """The options that decide the rows: a rerun must give the same ones."""
    from ..defaults import shipped_model

    path = shipped_model(given["model"])
    if not Path(path).is_file():
        raise FerEdgeError(f"model not found: {path}")
    keep = CLASSIFIER_OPTIONS + VIDEO_OPTIONS + ("images_per_task", "segment", "glob")
    return {**{k: given[k] for k in keep}, "model": str(path), "model_sha256": sha256(path)}


NEW, SAME, DAMAGED = "new", "same", "damaged"    # what --out holds, by _check_folder


def _check_folder(out: Path, job: dict) -> str:
    """NEW (nothing there yet), SAME (this same job: a rerun continues it) or DAMAGED (a job
    whose job.json cannot be read: said in one line; it is written again and every task done
    again, since nothing tells which options made the rows there); one line, an error, when
    `out` holds another job or anything else."""
    recorded = out / JOB_FILE
    if recorded.is_file():
        try:
            before = json.loads(recorded.read_text())
            if not isinstance(before, dict):
                raise ValueError(f"a JSON {type(before).__name__}, not an object")
        except (OSError, ValueError) as e:       # JSONDecodeError and UnicodeError included
            _note(f"{recorded} is damaged ({outputs.why_damaged(e)}): written again from this "
                  f"run's options, and every task is done again")
            return DAMAGED
        changed = sorted(k for k in set(before) | set(job) if before.get(k) != job.get(k))
        if changed:
            raise FerEdgeError(f"{out} holds a batch job made with other options "
                               f"({', '.join(options.flag(k) for k in changed)}); give the same "
                               f"ones to continue it, or another --out")
        return SAME
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FerEdgeError(f"{out} exists and is not a batch job's folder: pass a new --out")
    return NEW


def _note(line: str) -> None:
    """One line of the job's own on stderr (looked up at each call: the command points it at
    a copy of fd 2 that Ray's silenced lines do not reach)."""
    sys.stderr.write(f"fer-edge batch: {line}\n")
    sys.stderr.flush()


def _finished(out: Path, planned: set[str], say: bool) -> dict[str, dict]:
    """The task markers that can be read ({id: counts}); with `say`, one line for each damaged
    one (its task is not done, so it is done again and its marker written anew)."""
    finished, damaged = outputs.done(out)
    for path, why in damaged if say else ():
        then = "its task is done again" if path.stem in planned else \
            "ignored (its task is not among this run's)"
        _note(f"{path} is damaged ({why}): {then}")
    return finished


# Ray Data's own progress output, off for the job (one progress line, ours), and put back after
QUIET_DATA_CONTEXT = {"enable_progress_bars": False, "print_on_execution_start": False,
                      "enable_rich_progress_bars": False}


@contextlib.contextmanager
def _ray(address: str | None):
    """Ray for the job: the caller's session when one is running (left running afterwards),
    else one started here (to join `address`, or embedded) and shut down at the end. Ray's
    loggers and Ray Data's progress settings are quietened for the job and put back."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise FerEdgeError("fer-edge batch needs Ray: pip install 'fer-edge[ray]'") from None
    import logging

    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    levels = [log.level for log in loggers]
    for log in loggers:                  # its INFO lines; ours say what is done
        log.setLevel(logging.ERROR)
    started = not ray.is_initialized()
    try:
        if started and address:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        elif started:    # embedded: the same command works on a laptop
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR")
        ctx = ray.data.DataContext.get_current()
        before = {k: getattr(ctx, k) for k in QUIET_DATA_CONTEXT}
        for k, v in QUIET_DATA_CONTEXT.items():
            setattr(ctx, k, v)
        try:
            yield ray
        finally:
            for k, v in before.items():
                setattr(ctx, k, v)
    finally:
        if started and ray.is_initialized():
            ray.shutdown()    # its threads print nothing after this
        for log, level in zip(loggers, levels):
            log.setLevel(level)


class Progress:
    def __init__(self, total: int, quiet: bool, stream=None):
        self.total, self.quiet = total, quiet
        self.stream = stream or sys.stderr
        self.done = self.faces = 0
        self.t0 = time.monotonic()
        self.tty = self.stream.isatty()
        self.last = 0.0

    def add(self, faces: int) -> None:
        self.done += 1
        self.faces += faces
        now = time.monotonic()
        if self.quiet or (now - self.last < (0.2 if self.tty else 10) and self.done < self.total):
            return
        self.last = now
        line = (f"fer-edge batch: {self.done}/{self.total} tasks, {self.faces} faces, "
                f"{now - self.t0:.0f} s")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


@options.takes("batch")
def batch(inputs, out=None, glob=None, address=None, workers=None, worker_cpus=None,
          images_per_task=None, segment=None, model=None, detector=None, no_detect=None,
          every=None, threads=None, tta=None, align=None, smooth=None, detect_every=None,
          max_pixels=None, quiet=None) -> dict:
    """Classify `inputs` into Parquet under `out` (see outputs.py); returns the summary:
    inputs, done, failed, faces, seconds and inputs per second. Tasks already done in `out`
    (by the same job) are not done again."""
    given = {k: v for k, v in locals().items() if k != "inputs"}
    cfg = options.check("batch", given)
    inputs = [str(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
    if not inputs:
        raise FerEdgeError("nothing to classify: give images, videos, folders or manifests")
    out = Path(cfg.out)
    job = _job_options(cfg)
    state = _check_folder(out, job)
    files, missing, names = expand(inputs, cfg.glob)
    tasks, unopenable = plan(files, names, cfg.images_per_task, cfg.segment)
    if state != SAME:
        write_json(out / JOB_FILE, job)
    outputs.write_part(out, outputs.ERRORS, "inputs", missing + unopenable,
                       outputs.errors_schema())
    planned = {t.id for t in tasks}
    finished = {} if state == DAMAGED else _finished(out, planned, say=True)
    todo = [t for t in tasks if t.id not in finished]
    t0 = time.monotonic()
    if todo:
        _run(todo, out, cfg, job)
    finished = _finished(out, planned, say=False)
    if todo or not (out / outputs.VIDEOS).is_dir():   # derived from faces/: only when it grew
        outputs.write_video_summary(out, _labels(out))
    seconds = time.monotonic() - t0
    return _summary([names[f] for f in files], missing, tasks, todo, finished, out, seconds)


def _summary(files, missing, tasks, todo, finished, out: Path, seconds: float) -> dict:
    """What the folder holds, counted by input (as named): an input is done when every task
    covering it is (a video's segments), failed when it has a row in errors/."""
    pending = {f for t in tasks if t.id not in finished for f in t.names}
    failed = set(outputs.column(out, outputs.ERRORS, "file"))
    inputs = len(files) + len(missing)
    return {"inputs": inputs, "tasks": len(tasks), "tasks_this_run": len(todo),
            "done": len(set(files) - pending - failed), "failed": len(failed),
            "pending": len(pending - failed),
            "faces": sum(finished[t.id]["faces"] for t in tasks if t.id in finished),
            "seconds": round(seconds, 1),
            "inputs_per_second": round(len({f for t in todo for f in t.files}) / seconds, 1)
            if todo and seconds else None}


def _labels(out: Path) -> list[str]:
    import pyarrow.parquet as pq

    parts = sorted((out / outputs.FACES).glob("part-*.parquet"))
    if not parts:
        return []
    names = pq.read_schema(parts[0]).names
    return [n.removeprefix("score_") for n in names if n.startswith("score_")]


def _run(todo, out: Path, cfg, job: dict) -> None:
    with _ray(cfg.address) as ray:
        workers = cfg.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        ds = ray.data.from_items([t.row() for t in todo], override_num_blocks=len(todo))
        # An actor pool: each actor loads the model once. Ray Data restarts a lost actor (a
        # killed process, a machine gone) and retries its task; the task rewrites its own
        # part files, so nothing is counted twice.
        results = ds.map_batches(
            _worker_class(str(out.resolve()), job), batch_size=1,
            batch_format="pyarrow", concurrency=min(workers, len(todo)),
            num_cpus=cfg.worker_cpus)
        progress = Progress(len(todo), cfg.quiet)
        for row in results.iter_rows():
            progress.add(int(row["faces"]))


@contextlib.contextmanager
def command_streams():
    """The command's streams while it runs (the command's process only: a library call leaves
    fds alone). Ray prints its workers' fates ("(raylet) A worker died ... will be retried") on
    fd 1: they go to stderr, so stdout holds only the command's result. Ray's C++ core writes
    its own lines on fd 2 (one for every actor that may be restarted: ray-project/ray#53727):
    silenced; sys.stderr (the progress line, our notes) writes to a copy of fd 2 taken first.
    Failures reach us as Python exceptions all the same. FER_EDGE_DEBUG=1 keeps Ray's lines."""
    from ..edge.sources import quiet_native_stderr

    sys.stdout.flush()
    sys.stderr.flush()
    saved_out = os.dup(1)
    ours = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                     errors="backslashreplace")
    stderr = sys.stderr
    try:
        os.dup2(2, 1)
        with quiet_native_stderr(always=True):
            sys.stderr = ours
            try:
                yield
            finally:
                sys.stderr = stderr
    finally:
        sys.stdout.flush()
        os.dup2(saved_out, 1)
        os.close(saved_out)
        ours.close()


def _worker_class(out: str, job: dict):
    """TaskWorker bound to this job (its options, the model's path and sha256): its arguments
    travel with the class, so a restarted actor needs nothing from the object store
    (ray-project/ray#53727)."""

    class JobWorker(TaskWorker):
        def __init__(self):
            super().__init__(out, job)

    return JobWorker
