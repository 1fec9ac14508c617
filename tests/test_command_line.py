"""The strict command line: an unknown, misspelt or incomplete command or option ends in one line
and exit 2 before any work (python-fire alone runs the command first and complains after, in
eight lines); values are read by their option's kind, not as Python literals; --help speaks the
README's language; heavy commands answer before importing TensorFlow where they can."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge import defaults, options
from fer_edge.cli import check_command_line, main

ROOT = Path(__file__).resolve().parents[1]
FACE = str(ROOT / "examples" / "astronaut.jpg")
EXE = Path(sys.executable).with_name("fer-edge")
CLI = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "fer_edge.cli"]


def fer_edge(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    """The installed command, in a fresh process."""
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def python(code: str, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)

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
    # a misspelt or unknown command, or an option where a command belongs (not fire's 8 lines)
    (["clasify", FACE], "unknown command clasify: did you mean classify?"),
    (["evalute", "--models", "{tmp}/m.tflite"], "unknown command evalute: did you mean "
     "evaluate?"),
    (["models", "lst"], "unknown command models lst: did you mean models list?"),
    (["modles", "list"], "unknown command modles: did you mean models?"),
    (["frobnicate"], "unknown command frobnicate (`fer-edge --help` lists them: batch, "),
    (["--verison"], "--verison: not an option of fer-edge: did you mean --version?"),
    (["--tta"], "--tta: not an option of fer-edge: give a command first"),
    (["models", "--format", "json"], "--format: not an option of fer-edge models: give a "
     "command first"),
    (["classify", FACE, "--helpp"], "unknown option --helpp for classify: did you mean --help?"),
    (["classify", FACE, "--tta=maybe"], "--tta is a switch: give it alone (or --no-tta), not "
     "=maybe"),
    (["classify", FACE, "--no-tta=true"], "--no-tta is a switch: it takes no value"),
    (["data", "info", "{tmp}/a", "text", "{tmp}/v.csv", "more"], "more: data info takes no "
     "more words (its options: --data, --format, --votes)"),
    (["train", "--data", str(ROOT), "--out", str(ROOT / "README.md")], "README.md is a file: "
     "--out is the run's folder"),
    # no short options: -h is help, nothing else
    (["serve", "-p", "99999"], "-p: not an option of serve (could be --port)"),
    (["classify", FACE, "-m", "fast"], "-m: not an option of classify (could be --model"),
    # batch: a missing input, an empty folder or none, before --out is made
    (["batch", "{tmp}/nothing", "--out", "{tmp}/b"], "{tmp}/nothing: no such file or directory"),
    (["batch", str(ROOT / "calibration"), "--out", "{tmp}/b"], "calibration: no image or video "
     "in this folder"),
    (["batch", str(ROOT / "examples"), "--glob", "*.gif", "--out", "{tmp}/b"],
     "examples: no image or video in this folder matching --glob *.gif"),
    (["batch", "--out", "{tmp}/b"], "nothing to classify: give images, videos, folders or "
     "manifests"),
    # evaluate takes the shipped names that classify takes, and no other bare word
    (["evaluate", "--models", "fastest"], "model not found: fastest is neither a file nor a "
     "shipped model (default, fast, fer2013, ferplus)"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0][:3]) + f"-{i}"
                                                       for i, c in enumerate(CASES)])
def test_a_bad_command_line_stops_before_any_work(argv, message, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.startswith("fer-edge: error: ") and len(err.splitlines()) == 1, err
    assert message.format(tmp=tmp_path) in err, err
    assert list(tmp_path.iterdir()) == []        # nothing written


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("argv,expected", [
    (["train", "--no-teacher-flip", "--verbose", "2"], ["train", "--teacher_flip=false",
                                                        "--verbose=2"]),
    (["train", "--noteacher_flip"], ["train", "--teacher_flip=false"]),
    (["train", "--learning-rate=0.1", "--qat"], ["train", "--learning_rate=0.1", "--qat=true"]),
    (["train", "--track-test=false"], ["train", "--track_test=false"]),
    (["train", "--track-test=TRUE"], ["train", "--track_test=TRUE"]),
    (["classify", "a.jpg", "--no-detect", "b.jpg"], ["classify", "a.jpg", "--no_detect=true",
                                                     "b.jpg"]),
    (["classify", "a.jpg", "--noalign"], ["classify", "a.jpg", "--align=false"]),
    (["evaluate", "--models", "a.tflite", "b.tflite", "--threads", "-1"],
     ["evaluate", "--models=a.tflite", "b.tflite", "--threads=-1"]),
    (["serve", "--token", "a=b"], ["serve", "--token=a=b"]),
    (["train", "--help"], ["train", "--help"]),
    (["serve", "-h"], ["serve", "-h"]),
    (["data"], ["data"]),
    (["train", "--", "--trace"], ["train", "--", "--trace"]),
])
def test_good_command_lines_reach_fire_spelled_its_way(argv, expected):
    assert check_command_line(argv) == expected


# --------------------------------------------------------------------- help (finding 1, 4)

def _helps():
    return [name.split() for name in options.COMMANDS]


@pytest.mark.parametrize("command", _helps(), ids=" ".join)
def test_help_shows_no_python_types_and_each_switch_both_ways(command, capsys):
    assert main([*command, "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith(f"NAME\n    fer-edge {' '.join(command)} - ")
    assert "Type:" not in out and "Optional[" not in out, out
    for python in ("bool", "str", "int", "float", "None"):
        assert not re.search(rf"^\s+(Default: )?{python}\b", out, re.M), (python, out)
    assert not re.search(r"--[a-z0-9-]*_[a-z]", out), out     # the README's --learning-rate
    for o in options.COMMANDS[" ".join(command)].options:
        if o.kind is bool:
            shown = o.flag if o.name.startswith("no_") else f"{o.flag} / --no-{o.flag[2:]}"
            assert f"\n    {shown}\n" in out, (o.name, out)
        else:
            assert f"\n    {o.flag}={o.name.upper()}\n" in out, (o.name, out)
    assert not re.search(r"^\s+-[a-zA-Z], --", out, re.M)      # no short flags


def test_help_says_what_a_value_accepts_in_words(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "    --epochs=EPOCHS\n        number of epochs" in out
    assert "A whole number >= 1; default: the recipe's, else 60." in out
    assert "    --teacher-flip / --no-teacher-flip\n" in out
    assert main(["classify", "--help"]) == 0
    out = capsys.readouterr().out
    assert "    --align / --no-align\n" in out and "On by default." in out
    assert "    --no-detect\n" in out and "--no-no-detect" not in out


def test_minus_h_is_help_and_nothing_else():
    p = fer_edge("serve", "-h")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "\n    --host=HOST\n" in p.stdout and "-h, --host" not in p.stdout
    assert "-p, --port" not in p.stdout and "\n    --port=PORT\n" in p.stdout
    p = fer_edge("serve", "-p", "99999")
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == "fer-edge: error: -p: not an option of serve (could be --port)\n"


# -------------------------------------------------------- values by their kind (finding 1, 2)

@pytest.fixture
def seen(monkeypatch):
    """What the library function behind a command was called with (the command not run)."""
    import fer_edge.edge.classify
    import fer_edge.serve
    import fer_edge.training.engine

    calls = {}
    for module, name in ((fer_edge.edge.classify, "classify"), (fer_edge.serve, "serve"),
                         (fer_edge.training.engine, "train")):
        monkeypatch.setattr(module, name, lambda *a, _n=name, **kw: calls.update(
            {_n: (a, kw)}))
    return calls


@pytest.mark.parametrize("written,tta", [
    ("--tta", True), ("--tta=true", True), ("--tta=TRUE", True), ("--tta=True", True),
    ("--tta=yes", True), ("--tta=false", False), ("--tta=False", False), ("--tta=0", False),
    ("--no-tta", False), ("--notta", False)])
def test_a_switch_is_set_by_its_word_after_an_equals_sign(written, tta, seen):
    assert main(["classify", FACE, written]) == 0
    paths, given = seen["classify"]
    assert paths == ([FACE],) and given["tta"] is tta        # `true` is not an input


def test_tta_true_really_classifies_with_tta():
    p = fer_edge("classify", FACE, "--tta=true", "--format", "json")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert len(p.stdout.splitlines()) == 1 and json.loads(p.stdout)["faces"]


def test_a_number_given_to_a_text_option_stays_text(seen):
    assert main(["serve", "--source", "0", "--token", "123456", "--port", "8001",
                 "--smooth", "0.5"]) == 0
    given = seen["serve"][1]
    assert (given["source"], given["token"]) == ("0", "123456")
    assert (given["port"], given["smooth"]) == (8001, 0.5)
    assert main(["classify", FACE, "--labels", "0,1,2", "--glob", "1", "--every", "3"]) == 0
    given = seen["classify"][1]
    assert (given["labels"], given["glob"], given["every"]) == ("0,1,2", "1", 3)


def test_serve_source_0_passes_the_option_check():
    # the check runs in table order: --workers comes after --source and --token
    p = fer_edge("serve", "--source", "0", "--token", "123456", "--workers", "0")
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == "fer-edge: error: --workers must be a whole number >= 1, not 0\n"


def test_a_choice_is_the_tables_value(seen, tmp_path):
    (tmp_path / "d").mkdir()
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
                 "--verbose", "2", "--arch", "tiny"]) == 0
    given = seen["train"][1]
    assert given["verbose"] == 2 and given["arch"] == "tiny"


@pytest.mark.parametrize("argv,line", [
    (["train", "--epochs", "1.5"], "--epochs must be a whole number >= 1, not 1.5"),
    (["train", "--epochs", "abc"], "--epochs must be a whole number >= 1, not 'abc'"),
    (["train", "--learning-rate", "lots"], "--learning-rate must be a number > 0, not 'lots'"),
    (["train", "--learning-rate=-1e-3"], "--learning-rate must be a number > 0, not -0.001"),
    (["serve", "--port", "70000"], "--port must be a whole number in [0, 65535], not 70000"),
    (["classify", FACE, "--smooth", "1"], "--smooth must be a number in [0, 1), not 1"),
    (["train", "--verbose", "3"], "--verbose must be one of auto, 0, 1, 2, not '3'"),
])
def test_bad_numbers_are_one_line_as_before(argv, line, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err == f"fer-edge: error: {line}\n"


def test_the_python_api_checks_python_values_as_it_did():
    assert options.check("serve", {"port": 8001}, partial=True).port == 8001
    assert options.check("train", {"verbose": 1}, partial=True).verbose == 1
    for command, values, line in (("serve", {"source": 0}, "--source must be a text, not 0"),
                                  ("serve", {"port": "8001"}, "--port must be a whole number"),
                                  ("classify", {"tta": "true"}, "--tta must be true or false")):
        with pytest.raises(options.FerEdgeError, match=re.escape(line)):
            options.check(command, values, partial=True)


# ----------------------------------------------------------------- misspelt commands (3)

def test_a_misspelt_command_is_one_line_from_the_installed_command():
    p = fer_edge("clasify")
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == "fer-edge: error: unknown command clasify: did you mean classify?\n"
    p = fer_edge("classify", FACE, "--formt", "json")
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == ("fer-edge: error: unknown option --formt for classify: did you mean "
                        "--format?\n")


# -------------------------------------------------- TensorFlow's lines and imports (6, 7)

def test_models_list_imports_neither_tensorflow_nor_keras():
    p = python("import sys, time; t = time.perf_counter()\n"
               "from fer_edge.cli import main; rc = main(['models', 'list'])\n"
               "print(rc, round(time.perf_counter() - t, 2), sorted({m.split('.')[0] for m in "
               "sys.modules} & {'tensorflow', 'keras'}))")
    assert p.returncode == 0, p.stderr
    rc, seconds, heavy = p.stdout.splitlines()[-1].split(" ", 2)
    assert rc == "0" and heavy == "[]", p.stdout
    assert float(seconds) < 3, seconds     # 0.3 s on the 2-core test machine (13 s before)
    assert "seed" in p.stdout and "21,630,983" in p.stdout


def test_architectures_json_holds_kerass_parameter_counts():
    from fer_edge import shipped

    assert json.loads(shipped.ARCHITECTURES.read_text()) == shipped.measured_params(), \
        "stale: python -m fer_edge.shipped > fer_edge/architectures.json"


def test_tensorflow_start_up_lines_are_silenced(tmp_path):
    from synth import make_tree

    make_tree(tmp_path / "data", per_split={"train": 14, "val": 7, "test": 7})
    p = fer_edge("export", "--model", ROOT / "models" / "fer.keras", "--quantize", "int8",
                 "--data", tmp_path / "data", "--calib", "7", "--out", tmp_path / "x",
                 timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(tmp_path / "x" / "fer_int8.tflite")
    # only ours: no oneDNN, CUDA, absl or converter lines
    assert [line.split(" ")[0] for line in p.stderr.splitlines()] == ["converting", "wrote"], \
        p.stderr


def test_fer_edge_debug_keeps_tensorflows_lines():
    code = ("import os, sys; from fer_edge import cli; cli._quiet_tensorflow(); "
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), cli._QuietTensorFlow in sys.meta_path)")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**env, "FER_EDGE_DEBUG": ""})
    debug = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**env, "FER_EDGE_DEBUG": "1"})
    assert quiet.stdout.split() == ["3", "True"] and debug.stdout.split() == ["None", "False"]


def test_train_refuses_an_existing_out_before_importing_tensorflow(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    p = python("import sys; from fer_edge.cli import main\n"
               f"rc = main(['train', '--data', {str(tmp_path / 'data')!r}, '--out', "
               f"{str(tmp_path / 'run')!r}])\n"
               "print(rc, sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', "
               "'keras'}))")
    assert p.stdout.strip() == "2 []", p.stdout + p.stderr
    assert p.stderr == (f"fer-edge: error: {tmp_path / 'run'} already holds a run; pass --resume "
                        f"to continue it or --force to start over\n")
    assert [f.name for f in (tmp_path / "run").iterdir()] == ["config.json"]


# -------------------------------------------------------------------------------- batch (8)

def test_batch_of_a_missing_input_stops_before_fer_edge_batch_is_imported(tmp_path):
    p = python("import sys; from fer_edge.cli import main\n"
               f"rc = main(['batch', {str(tmp_path / 'nope')!r}, '--out', "
               f"{str(tmp_path / 'out')!r}])\n"
               "print(rc, 'fer_edge.batch' in sys.modules)")
    assert p.stdout.strip() == "2 False", p.stdout + p.stderr
    assert p.stderr == f"fer-edge: error: {tmp_path / 'nope'}: no such file or directory\n"
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------- shipped names (9)

def test_evaluate_takes_shipped_names_as_classify_does(monkeypatch, tmp_path):
    import fer_edge.evaluate

    (tmp_path / "data").mkdir()
    seen = {}
    monkeypatch.setattr(fer_edge.evaluate, "evaluate", lambda models, **kw: seen.update(
        models=models) or {"variants": []})
    monkeypatch.setattr(fer_edge.evaluate, "markdown", lambda result: "")
    assert main(["evaluate", "--models", "default", "fast", str(ROOT / "models" / "fer.keras"),
                 "--data", str(tmp_path / "data")]) == 0
    assert seen["models"] == [str(defaults.shipped_model("default")),
                              str(defaults.shipped_model("fast")),
                              str(ROOT / "models" / "fer.keras")]
    assert all(Path(m).is_file() for m in seen["models"])


def test_models_list_names_the_installed_files(capsys):
    assert main(["models", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["shipped"]
    for row in rows:
        assert "/" not in row["file"] and Path(row["path"]).is_file()
        assert Path(row["path"]) == defaults.shipped_model(row["name"]).resolve()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "models/" not in out.split("(vs fer")[0]     # no clone-relative path
    folder = re.search(r"\(the files are in (\S+);", out).group(1)
    assert all((Path(folder) / row["file"]).is_file() for row in rows)
