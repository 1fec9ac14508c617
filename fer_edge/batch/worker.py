"""The actor of a batch job: one Classifier (model and detector loaded once), running tasks and
writing each task's rows atomically before its marker (outputs.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .. import options
from ..edge import classify
from ..errors import FerEdgeError
from . import outputs
from .inputs import Task, filesystem, is_remote

# What a Classifier takes (batch's table has no --labels), and what its video frames take, of
# the job's options.
CLASSIFIER_OPTIONS = tuple(k for k in classify.CLASSIFIER_OPTIONS if k in options.spec("batch"))
VIDEO_OPTIONS = ("every", "smooth", "detect_every")


class TaskWorker:
    """Called by Ray Data with a batch of task rows (pyarrow); returns one counts row a task."""

    def __init__(self, out: str, options: dict):
        from ..edge.classify import Classifier

        self.out = Path(out)
        self.clf = Classifier(**{k: options[k] for k in CLASSIFIER_OPTIONS})
        # the job digested the model once (job.json); every actor names it with that
        self.model, self.sha256 = Path(options["model"]).name, options["model_sha256"]
        self.video = {k: options[k] for k in VIDEO_OPTIONS}
        self.faces_schema = outputs.faces_schema(self.clf.names)

    def __call__(self, batch):
        counts = [self.run(Task.from_row(row)) for row in batch.to_pylist()]
        return {k: [c[k] for c in counts] for k in ("id", "inputs", "failed", "faces")}

    def run(self, task: Task) -> dict:
        errors: list[dict] = []
        rows = self._images(task, errors) if task.kind == "images" else self._video(task, errors)
        # a generator: the rows go to Parquet a row group at a time as they are made
        faces = outputs.write_part(self.out, outputs.FACES, task.id, rows, self.faces_schema)
        outputs.write_part(self.out, outputs.ERRORS, task.id, errors, outputs.errors_schema())
        counts = {"id": task.id, "inputs": len(task.files), "failed": len(errors),
                  "faces": faces}
        outputs.mark_done(self.out, task.id, counts)   # last: the task is done
        return counts

    def _images(self, task: Task, errors: list[dict]) -> Iterator[dict]:
        """The faces rows of a task's images; an image that fails is a row of `errors`."""
        for file, name in zip(task.files, task.names):
            try:
                fs, inner = filesystem(file)
                with fs.open_input_file(inner) as f:
                    data = f.read()
                found = self.clf.faces(data)      # the guarded decode (edge/sources.decode)
            except (OSError, FerEdgeError) as e:
                errors.append({"file": name, "reason": str(e).removeprefix(f"{file}: ")})
                continue
            yield from outputs.face_rows(name, found, self.model, self.sha256)

    def _video(self, task: Task, errors: list[dict]) -> Iterator[dict]:
        """The faces rows of a video's segment, frame by frame; a video that fails midway is a
        row of `errors` (its rows so far kept, as classify prints them)."""
        file, name = task.files[0], task.names[0]
        local, scratch = file, None
        if is_remote(file):        # OpenCV reads local files: fetch it first
            scratch = tempfile.mkdtemp(prefix="fer-edge-batch-")
            local = os.path.join(scratch, file.rsplit("/", 1)[-1])
            fs, inner = filesystem(file)
            with fs.open_input_stream(inner) as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst)
        try:
            with self.clf.video(local, start=task.start, stop=task.stop, **self.video) as frames:
                for rec in frames:
                    yield from outputs.face_rows(name, rec["faces"], self.model, self.sha256,
                                                 rec["frame"], rec["time"], task.segment)
        except FerEdgeError as e:
            errors.append({"file": name, "reason": str(e).removeprefix(f"{local}: ")})
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
