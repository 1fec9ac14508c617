"""The shipped card reproduces: every `fer-edge train` command it gives (the teachers' ones in its
distillation bullets, then the warm-restart stages and the final runs, oldest first; the fast
model's section after the default's) re-run for 2
epochs on --limit 300, each later stage starting from the checkpoint the earlier one wrote (or
its int8 export, for a stage that starts from one). A command both cards give (their teacher and
the default model's first stages), with the same inputs, runs once for both.
Slow (real training on FER2013): `FER_EDGE_DATA=../shared/fer2013 pytest -m slow`."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from fer_edge.cli import main

MODELS = Path(__file__).resolve().parents[1] / "models"
CARDS = ("MODEL_CARD.md", "MODEL_CARD_ferplus.md")
QUICK = {"--epochs": "2", "--limit": "300"}
# --snapshot is dropped: a quick run must not write into the repository's snapshot
DROP = ("--time-budget", "--snapshot")


def card_train_commands(text: str) -> list[list[str]]:
    """The card's `fer-edge train` commands as argv lists: teachers first (the bullets name how
    each was trained), then the reproduce block in order."""
    teachers = re.findall(r"trained by `(fer-edge train [^`]+)`", text)
    block = [line.strip() for line in text.splitlines()
             if line.strip().startswith("fer-edge train ")]
    # A command the card gives twice (a teacher that is also a warm-restart stage) runs once.
    # Without "fer-edge train"; each path's leading ~ expanded, as the shell and the tool
    # (for the paths after a comma) would.
    unique = [[",".join(os.path.expanduser(p) for p in a.split(",")) for a in shlex.split(c)[2:]]
              for c in dict.fromkeys(teachers + block)]
    return in_dependency_order(unique)


def _value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def in_dependency_order(commands: list[list[str]]) -> list[list[str]]:
    """Each command after those whose --out folder holds its --init or --teacher files."""
    out_of = {folder: c for c in commands for folder in _outputs(c)}

    def needs(c):
        files = [_value(c, "--init")] + (_value(c, "--teacher") or "").split(",")
        return {str(Path(f).parent) for f in files if f} & set(out_of) - set(_outputs(c))
    ordered, done = [], set()
    while len(ordered) < len(commands):
        ready = next(c for c in commands if c not in ordered and needs(c) <= done)
        ordered.append(ready)
        done.update(_outputs(ready))
    return ordered


def _outputs(argv: list[str]) -> list[str]:
    """The folders a train command writes its checkpoints to: --out, and --snapshot (a later
    stage may start from the snapshot's copy, committed in the repository)."""
    return [str(Path(v)) for v in (_value(argv, "--out"), _value(argv, "--snapshot")) if v]


def quick(argv: list[str], out: Path, produced: dict[str, Path]) -> list[str]:
    """The command made quick: 2 epochs on 300 images per split, its own --out, SWA from
    epoch 1, and earlier outputs (--init, --teacher) replaced by what this test produced."""
    args, i = [], 0
    while i < len(argv):
        flag = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
        i += 2 if value is not None else 1
        if flag in DROP or flag in QUICK or flag == "--out":
            continue
        if flag == "--swa-start":
            value = "1"
        if flag in ("--init", "--teacher") and value:   # what an earlier stage made
            value = ",".join(str(produced.get(v, v)) for v in value.split(","))
        if flag == "--data":
            value = os.environ["FER_EDGE_DATA"]
        args += [flag] + ([value] if value is not None else [])
    for flag, value in QUICK.items():
        args += [flag, value]
    return ["train", *args, "--out", str(out)]


@pytest.fixture(scope="module")
def stages() -> dict:
    """The quick commands run so far in this module: {their arguments less --out: what each
    made, by the card's names of it}. A stage of the second card that is one of the first's (the
    same command on the same inputs) is not trained twice."""
    return {}


def run_stage(argv: list[str], out: Path, produced: dict[str, Path]) -> dict[str, Path]:
    """One card command run quickly in `out`; what it made, by the card's names of it."""
    assert main(quick(argv, out, produced)) == 0, argv
    assert (out / "metrics.json").exists()
    return {str(Path(original) / name): out / name if (out / name).exists() else
            out / "best.keras"
            for original in _outputs(argv) for name in ("best.keras", "last.keras", "swa.keras")}


def export_stage(argv: list[str], made: dict[str, Path]) -> None:
    """The int8 export a later stage starts from, beside the stage's checkpoints."""
    out = made[str(Path(_value(argv, "--out")) / "best.keras")].parent
    selected = json.loads((out / "metrics.json").read_text())["selected"]
    assert main(["export", "--model", str(out / selected), "--quantize", "int8",
                 "--data", os.environ["FER_EDGE_DATA"]]) == 0
    made[str(Path(_value(argv, "--out")) / "fer_int8.tflite")] = out / "fer_int8.tflite"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FER_EDGE_DATA"),
                    reason="FER_EDGE_DATA is not set (the real FER2013 folder tree)")
@pytest.mark.parametrize("card", CARDS)
def test_card_commands_rerun_for_two_epochs(card, stages, tmp_path_factory):
    commands = card_train_commands((MODELS / card).read_text())
    assert commands, "the card gives no train command"
    inits = {_value(argv, "--init") for argv in commands}
    produced: dict[str, Path] = {}
    for argv in commands:
        same = tuple(quick(argv, Path("-"), produced)[:-2])      # the command less its --out
        if same not in stages:
            stages[same] = run_stage(argv, tmp_path_factory.mktemp("stage"), produced)
        made = stages[same]
        export = str(Path(_value(argv, "--out")) / "fer_int8.tflite")
        if export in inits and export not in made:     # a later stage starts from its export
            export_stage(argv, made)
        produced.update(made)


def test_card_commands_are_found_and_made_quick(monkeypatch):
    text = ("- Distilled ...:\n  - `t.keras` (sha256 `x…`): `teacher_vgg`, val top-1 67.93%, 40 "
            "epochs, trained by `fer-edge train --data D --arch teacher_vgg --out runs/t "
            "--epochs 40 --swa-start 32 --time-budget 140m`.\n"
            "      fer-edge train --data D --arch edge_fast --init runs/t/swa.keras "
            "--teacher runs/t/swa.keras,models/fer.keras --noteacher_flip --out runs/s\n")
    teacher, student = card_train_commands(text)
    monkeypatch.setenv("FER_EDGE_DATA", "D")
    produced = {"runs/t/swa.keras": Path("/tmp/stage0/swa.keras")}
    argv = quick(student, Path("/tmp/stage1"), produced)
    assert argv[argv.index("--teacher") + 1] == "/tmp/stage0/swa.keras,models/fer.keras"
    assert "--noteacher_flip" in argv and argv[-2:] == ["--out", "/tmp/stage1"]
    argv = quick(teacher, Path("/tmp/stage0"), {})
    assert argv[argv.index("--swa-start") + 1] == "1" and "--time-budget" not in argv
    assert argv[argv.index("--epochs") + 1] == "2"


def test_card_commands_run_after_the_runs_they_start_from():
    text = ("- Distilled ...:\n  - `runs/t/swa.keras` (sha256 `x…`): trained by "
            "`fer-edge train --arch teacher_vgg --out runs/t`.\n"
            "  - `runs/b/swa.keras` (sha256 `y…`): trained by "
            "`fer-edge train --arch edge_fast --init runs/a/best.keras --out runs/b`.\n"
            "      fer-edge train --arch edge_fast --out runs/a\n"
            "      fer-edge train --arch edge_fast --init runs/a/best.keras --out runs/b\n"
            "      fer-edge train --arch edge_fast --init runs/b/swa.keras "
            "--teacher runs/t/swa.keras,runs/b/swa.keras --out runs/c\n")
    outs = [argv[argv.index("--out") + 1] for argv in card_train_commands(text)]
    assert outs == ["runs/t", "runs/a", "runs/b", "runs/c"]


def test_a_stage_that_starts_from_a_committed_snapshot_runs_after_it_and_writes_none():
    text = ("      fer-edge train --arch conv_ferplus --init snaps/a/best.keras --qat --out runs/b\n"
            "      fer-edge train --arch conv_ferplus --out runs/a --snapshot snaps/a\n")
    first, second = card_train_commands(text)
    assert _value(first, "--out") == "runs/a" and _value(second, "--out") == "runs/b"
    argv = quick(first, Path("/tmp/stage1"), {})
    assert "--snapshot" not in argv and argv[-2:] == ["--out", "/tmp/stage1"]
    made = {"snaps/a/best.keras": Path("/tmp/stage1/best.keras")}
    assert _value(quick(second, Path("/tmp/stage2"), made), "--init") == "/tmp/stage1/best.keras"
