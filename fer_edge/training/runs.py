"""A training run folder and what it holds: config.json (resolved options, data, command),
state.json (last finished epoch, for --resume), metrics.json (final figures and the checkpoint
selected on val), history.csv and the checkpoints. Train, --resume, export, evaluate and card ask
it which data, which checkpoint and which command, instead of reading the files themselves."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import FerEdgeError
from ..edge.fileio import write_json, write_text


class RunFolder:
    CONFIG, STATE, METRICS, HISTORY = "config.json", "state.json", "metrics.json", "history.csv"
    BEST, LAST, SWA = "best.keras", "last.keras", "swa.keras"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def of_model(cls, model: str | os.PathLike) -> "RunFolder | None":
        """The run a checkpoint was written by (its folder holds config.json), if any."""
        run = cls(Path(model).parent)
        return run if run.is_run() else None

    # -------------------------------------------------------------------------------- state

    def is_run(self) -> bool:
        return (self.path / self.CONFIG).is_file()

    def holds_anything(self) -> bool:
        return self.path.exists() and any(self.path.iterdir())

    def resumable(self) -> bool:
        return (self.path / self.STATE).is_file() and (self.path / self.LAST).is_file()

    def _read(self, name: str, required: bool) -> dict:
        path = self.path / name
        if not path.is_file():
            if required:
                raise FerEdgeError(f"{self.path} is not a training run (no {name})")
            return {}
        try:
            return json.loads(path.read_text())
        except ValueError:
            raise FerEdgeError(f"{path} is not readable JSON") from None

    @property
    def config(self) -> dict:
        return self._read(self.CONFIG, required=True)

    @property
    def state(self) -> dict:
        return self._read(self.STATE, required=False)

    @property
    def metrics(self) -> dict:
        return self._read(self.METRICS, required=True)

    @property
    def metrics_if_done(self) -> dict:
        """metrics.json, or {} for a run that has not finished."""
        return self._read(self.METRICS, required=False)

    @property
    def epochs_done(self) -> int:
        return int(self.state.get("epoch", 0))

    # ------------------------------------------------------------------ questions it answers

    @property
    def data(self) -> str:
        """The data the run was trained on."""
        return self.config["data"]

    @property
    def options(self) -> dict:
        return self.config["options"]

    @property
    def command(self) -> str:
        return self.config.get("command", "")

    @property
    def selected(self) -> Path:
        """The checkpoint train selected on val (best.keras, or swa.keras when it won)."""
        return self.path / self.metrics_if_done.get("selected", self.BEST)

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    # ------------------------------------------------------------------------------- writes

    def start(self, force: bool) -> None:
        """Make the folder for a new run: it must be new or empty unless `force`."""
        if self.holds_anything():
            if not force:
                raise FerEdgeError(f"{self.path} already holds a run; pass --resume to continue "
                                   f"it or --force to start over")
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def resume_files(self) -> list[Path]:
        """What --resume reads (and best.keras, the checkpoint so far): a snapshot's files."""
        names = (self.CONFIG, self.STATE, self.LAST, self.BEST, self.HISTORY)
        return [self.path / n for n in names if (self.path / n).is_file()] + \
            sorted(self.path.glob("swa_*.npz"))

    def snapshot(self, dest: str | os.PathLike) -> None:
        """Copy what --resume needs into `dest`, replacing it whole (built beside it, then
        renamed over it), so a kill leaves the previous epoch's snapshot or this one, never a
        mixture. A snapshot in a repository carries a long training to another machine."""
        dest = Path(dest)
        new, old = dest.with_name(f".{dest.name}.new"), dest.with_name(f".{dest.name}.old")
        for stale in (new, old):
            shutil.rmtree(stale, ignore_errors=True)
        new.mkdir(parents=True)
        for f in self.resume_files():
            shutil.copy2(f, new / f.name)
        if dest.exists():
            os.replace(dest, old)
        os.replace(new, dest)
        shutil.rmtree(old, ignore_errors=True)

    def restore(self, snapshot: "RunFolder") -> bool:
        """Take the snapshot's state when it is further on than this folder's (a fresh machine:
        this folder is empty); True when it was taken."""
        if not snapshot.resumable():
            raise FerEdgeError(f"--snapshot {snapshot}: nothing to resume there (no state.json / "
                               f"last.keras)")
        if self.resumable() and self.epochs_done >= snapshot.epochs_done:
            return False
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob("swa_*.npz"):
            stale.unlink()
        for f in snapshot.resume_files():
            shutil.copy2(f, self.path / f.name)
        return True

    def write_config(self, config: dict) -> None:
        write_json(self.path / self.CONFIG, config)

    def write_state(self, state: dict) -> None:
        write_json(self.path / self.STATE, state)

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.path / self.METRICS, metrics)

    def trim_history(self) -> None:
        """Keep the header and the rows of finished epochs: a kill after CSVLogger wrote an
        epoch's row but before state.json recorded it leaves a row the resumed run writes
        again."""
        path, done = self.history, self.epochs_done
        if not path.exists():
            return
        lines = path.read_text().splitlines()
        kept = lines[:1] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) < done]
        if len(kept) != len(lines):
            write_text(path, "\n".join(kept) + "\n")


def resolve_data(data, model_path: str | os.PathLike | None = None) -> str:
    """--data, else the data the model's run was trained on, else $FER_EDGE_DATA."""
    if data:
        return str(data)
    run = RunFolder.of_model(model_path) if model_path is not None else None
    if run is not None:
        return run.data
    if os.environ.get("FER_EDGE_DATA"):
        return os.environ["FER_EDGE_DATA"]
    raise FerEdgeError("no data given: pass --data DIR (FER2013) or set FER_EDGE_DATA")
