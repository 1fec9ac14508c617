"""The strict command line: an unknown, misspelt or incomplete option ends in one line and exit 2
before any work (python-fire alone runs the command first and complains after)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_edge.cli import check_command_line, main

ROOT = Path(__file__).resolve().parents[1]
FACE = str(ROOT / "examples" / "astronaut.jpg")

CASES = [   # (argv with {tmp}, the line's specific text)
    (["train", "--data", "{tmp}/d", "--arch", "tiny", "--limit", "200", "--epoch", "1", "--out",
      "{tmp}/t"], "unknown option --epoch for train: did you mean --epochs?"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--learning_rat", "0.1"],
     "unknown option --learning_rat for train: did you mean --learning-rate?"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--bach-size", "8"],
     "did you mean --batch-size?"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--tagret", "ferplus"],
     "did you mean --target?"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--xyz", "1"],
     "unknown option --xyz for train (its options: --data, --arch"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--qat", "yes"],
     "--qat is a switch: it takes no value (got 'yes'; --no-qat turns it off)"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--resume", "now"],
     "--resume is a switch: it takes no value"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--track-test=maybe"],
     "--track-test is a switch: give it alone"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--epochs"], "--epochs needs a value"),
    (["train", "--data", "{tmp}/d", "--epochs", "--out", "{tmp}/t"], "--epochs needs a value"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "--no-epochs"],
     "unknown option --no-epochs for train"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "-z"], "-z: not an option of train"),
    (["train", "--data", "{tmp}/d", "--out", "{tmp}/t", "-s", "3"],
     "-s: not an option of train (could be"),
    (["classify", FACE, "--formt", "json"],
     "unknown option --formt for classify: did you mean --format?"),
    (["classify", FACE, "--tta", "yes"], "--tta is a switch: it takes no value (got 'yes'"),
    (["classify", FACE, "--summary", "false"], "--summary is a switch"),
    (["classify", FACE, "--model"], "--model needs a value"),
    (["classify", FACE, "--save-anotated", "{tmp}/o"], "did you mean --save-annotated?"),
    (["classify", FACE, "--detect-evry", "3"], "did you mean --detect-every?"),
    (["evaluate", "--models", "{tmp}/m.tflite", "--slpit", "val"],
     "did you mean --split?"),
    (["evaluate", "--models", "{tmp}/m.tflite", "--tta", "no"], "--tta is a switch"),
    (["evaluate", "--models", "{tmp}/m.tflite", "--latency-runs"],
     "--latency-runs needs a value"),
    (["export", "--model", "{tmp}/m.keras", "--quantise", "int8"],
     "did you mean --quantize?"),
    (["export", "--model", "{tmp}/m.keras", "--force", "please"], "--force is a switch"),
    (["calibrate", "--data", "{tmp}/d", "--sizes", "9"], "did you mean --size?"),
    (["data", "info", "--dat", "{tmp}/d"], "unknown option --dat for data info: did you mean "
     "--data?"),
    (["data", "info", "--data", "{tmp}/d", "--vote", "{tmp}/v.csv"], "did you mean --votes?"),
    (["models", "list", "--fromat", "json"], "did you mean --format?"),
    (["card", "--run", "{tmp}/r", "--reprot", "{tmp}/r"], "did you mean --report?"),
    (["timeline", "{tmp}/x.jsonl", "--outt", "{tmp}/o"], "did you mean --out?"),
    (["timeline", "{tmp}/x.jsonl", "--out"], "--out needs a value"),
    (["card", "--run", "{tmp}/r", "--force=sure"], "--force is a switch: give it alone"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0][:3]) + f"-{i}"
                                                       for i, c in enumerate(CASES)])
def test_a_bad_command_line_stops_before_any_work(argv, message, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.startswith("fer-edge: error: ") and len(err.splitlines()) == 1, err
    assert message in err, err
    assert list(tmp_path.iterdir()) == []        # nothing written


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("argv,expected", [
    (["train", "--no-teacher-flip", "--verbose", "2"], ["train", "--noteacher_flip",
                                                        "--verbose", "2"]),
    (["train", "--noteacher_flip"], ["train", "--noteacher_flip"]),
    (["train", "--learning-rate=0.1", "--qat"], ["train", "--learning_rate=0.1", "--qat"]),
    (["train", "--track-test=false"], ["train", "--track_test=false"]),
    (["classify", "a.jpg", "--no-detect", "b.jpg"], ["classify", "a.jpg", "--no_detect",
                                                     "b.jpg"]),
    (["classify", "a.jpg", "--noalign"], ["classify", "a.jpg", "--noalign"]),
    (["evaluate", "--models", "a.tflite", "b.tflite", "--threads", "-1"],
     ["evaluate", "--models", "a.tflite", "b.tflite", "--threads", "-1"]),
    (["train", "--help"], ["train", "--help"]),
    (["data"], ["data"]),
    (["train", "--", "--trace"], ["train", "--", "--trace"]),
])
def test_good_command_lines_reach_fire_spelled_its_way(argv, expected):
    assert check_command_line(argv) == expected
