"""The validated configuration: the CLI's signatures equal the specs, and a bad-option matrix
generated from the specs (so a new option is covered the day it is added). Every bad value must
end in exit 2, exactly one line on stderr naming the option, no traceback, and nothing written."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge import options as config
from fer_edge.cli import CLI, Data, Models, main

COMMANDS = {                      # command -> (argv prefix, the function behind it)
    "train": (["train"], CLI.train),
    "export": (["export"], CLI.export),
    "calibrate": (["calibrate"], CLI.calibrate),
    "evaluate": (["evaluate"], CLI.evaluate),
    "classify": (["classify"], CLI.classify),
    "batch": (["batch"], CLI.batch),
    "serve": (["serve"], CLI.serve),
    "timeline": (["timeline"], CLI.timeline),
    "card": (["card"], CLI.card),
    "data info": (["data", "info"], Data.info),
    "models list": (["models", "list"], Models.list),
}
# positional arguments of the CLI that the specs name differently
POSITIONAL = {"evaluate": {"paths"}, "classify": {"paths"}, "batch": {"paths"}}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_signature_equals_the_spec(command):
    params = set(inspect.signature(COMMANDS[command][1]).parameters) - {"self"}
    params -= POSITIONAL.get(command, set())
    assert params == set(config.spec(command)), command


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_documents_every_option(command, capsys):
    assert main([*COMMANDS[command][0], "--help"]) == 0
    out = capsys.readouterr().out
    for o in config.COMMANDS[command].options:
        assert f"\n    {o.flag}" in out and o.help[:40] in out.replace("\n        ", " "), \
            (command, o.name)


# ------------------------------------------------------------------------ the bad-option matrix

def _bad_values(opt: config.Opt) -> list:
    """Wrong values for an option, as python-fire hands them over (strings stay strings)."""
    k = opt.kind
    if opt.choices is not None:
        return ["bogus"]
    if k is int:
        return ["seven", opt.low - 1 if opt.low is not None else 1.5]
    if k is float:
        bad = ["lots"]
        if opt.low is not None:
            bad.append(opt.low - 1 if not opt.low_open else opt.low)
        if opt.high is not None:
            bad.append(opt.high + 1 if not opt.high_open else opt.high)
        return bad
    if k is bool:
        return ["maybe"]
    if k in ("path", "file", "dir", "files"):
        return ["/nonexistent/fer-edge/x"]
    if k == "duration":
        return ["soon"]
    if k == "int_or_path":
        return [0, "/nonexistent/fer-edge/calib.json"]
    return []          # free text and output paths: nothing is wrong in itself


# A switch takes no value: in a command that takes paths, the word after it is a path
# (`--no-detect a.jpg`), not an error.
SKIP = {(command, o.name) for command in COMMANDS if config.COMMANDS[command].paths
        for o in config.COMMANDS[command].options if o.kind is bool}


def _valid_args(command: str, tmp: Path) -> list[str]:
    """The smallest valid command line: required options with inputs that exist (options are
    checked before any input is opened, so placeholders do)."""
    (tmp / "data" / "train").mkdir(parents=True, exist_ok=True)
    for name in ("m.keras", "m.tflite", "face.png", "results.jsonl"):
        (tmp / name).touch()
    (tmp / "report").mkdir(exist_ok=True)
    data = str(tmp / "data")
    return {
        "train": ["--data", data, "--out", str(tmp / "run")],
        "export": ["--model", str(tmp / "m.keras")],
        "calibrate": ["--data", data, "--out", str(tmp / "calib.json")],
        "evaluate": ["--models", str(tmp / "m.tflite"), "--data", data],
        "classify": [str(tmp / "face.png")],
        "batch": [str(tmp / "face.png"), "--out", str(tmp / "batch")],
        "serve": ["--port", "0"],
        "timeline": [str(tmp / "results.jsonl"), "--out", str(tmp / "tl")],
        "card": ["--run", str(tmp / "report"), "--report", str(tmp / "report"),
                 "--train-command", "x", "--out", str(tmp / "card.md")],
        "data info": ["--data", data],
        "models list": [],
    }[command]


def _cases():
    for command in COMMANDS:
        for opt in config.COMMANDS[command].options:
            if (command, opt.name) in SKIP:
                continue
            for bad in _bad_values(opt):
                yield pytest.param(command, opt.name, bad, id=f"{command}-{opt.name}-{bad}")


CASES = list(_cases())


def test_matrix_is_large_enough():
    assert len(CASES) >= 60, len(CASES)


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("command,name,bad", CASES)
def test_bad_option(command, name, bad, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [*COMMANDS[command][0], *_valid_args(command, tmp_path)]
    flag = "--" + name.replace("_", "-")
    if flag in argv:                        # replace a required option's valid value
        i = argv.index(flag)
        argv[i + 1] = str(bad)
    else:
        argv += [flag, str(bad)]
    before = _snapshot(tmp_path)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (argv, out, err)
    assert len(err.splitlines()) == 1 and err.startswith("fer-edge: error: "), err
    assert flag in err, err
    assert "Traceback" not in err + out
    assert _snapshot(tmp_path) == before, "something was written"


@pytest.mark.parametrize("argv", [
    ["train", "--data", "{tmp}/data", "--out", "{tmp}/run", "--augment", "bogus"],
    ["train", "--data", "{tmp}/data", "--out", "{tmp}/run", "--epochs", "0"],
    ["train", "--data", "{tmp}/data", "--out", "{tmp}/run", "--arch", "bogus"],
    ["evaluate", "--models", "{tmp}/m.tflite", "--data", "{tmp}/data", "--threads", "-1"],
])
def test_bad_option_end_to_end(argv, tmp_path):
    """The same through the installed command: one line, exit 2, no run folder."""
    _valid_args("train", tmp_path)
    exe = Path(sys.executable).with_name("fer-edge")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fer_edge.cli"]
    p = subprocess.run(cmd + [a.format(tmp=tmp_path) for a in argv], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "run").exists()


def test_combinations_are_checked_before_anything_is_written(tmp_path, capsys):
    from synth import make_tree

    make_tree(tmp_path / "data", per_split={"train": 7, "val": 7, "test": 7})
    base = ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
            "--arch", "tiny"]
    for extra, message in ((["--swa-lr", "0.01"], "--swa-lr needs --swa-start"),
                           (["--swa-start", "9", "--epochs", "5"], "--swa-start must be below"),
                           (["--resume", "--force"], "pass one")):
        rc = main(base + extra)
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "run").exists()


def test_the_tables_static_choices_are_the_registries():
    from fer_edge.edge import detect
    from fer_edge.training import augment

    assert set(config.DETECTORS) == set(detect.DETECTORS)
    assert set(config.AUGMENTS) == set(augment.PRESETS)


def test_the_python_api_takes_its_defaults_from_the_table(monkeypatch):
    import inspect

    from fer_edge import evaluate as evaluate_module

    seen = {}
    monkeypatch.setattr(config, "check", lambda command, values, partial=False: seen.update(
        values) or config.Config(values))
    try:
        evaluate_module.evaluate(["m.tflite"])
    except Exception:
        pass   # only the defaults it was called with matter here
    table = config.defaults_of("evaluate")
    for name in ("split", "threads", "latency_runs"):
        assert seen[name] == table[name], name
    assert inspect.signature(evaluate_module.evaluate).parameters["split"].default is None


def test_version(capsys):
    from fer_edge import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fer-edge {__version__}"


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out, err = capsys.readouterr()         # on stdout, without python-fire's INFO line
    assert err == ""
    for command in ("train", "export", "calibrate", "evaluate", "classify", "timeline", "card",
                    "data", "models"):
        assert f"\n     {command}\n" in out, command


@pytest.mark.parametrize("argv,first", [
    (["train", "--help"], "NAME\n    fer-edge train - Train an architecture"),
    (["data", "info", "-h"], "NAME\n    fer-edge data info - Per-split, per-class image counts"),
    (["models", "--help"], "NAME\n    fer-edge models - The shipped models"),
])
def test_command_help_goes_to_stdout(argv, first, capsys):
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.startswith(first) and err == "", (out[:200], err)
    if argv[0] == "train":    # one spelling of each flag: the README's hyphens
        assert "--ferplus-weight=FERPLUS_WEIGHT" in out and "--ferplus_weight" not in out
        assert "--no-teacher-flip turns it off" in out


def test_each_file_of_a_comma_list_may_start_with_home(tmp_path, monkeypatch):
    # the shell expands ~ only before the first comma, so `--teacher ~/a.keras,~/b.keras`
    # reaches the tool with the second ~ as typed
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("a.keras", "b.keras"):
        (tmp_path / name).write_bytes(b"x")
    cfg = config.check("train", {"teacher": f"{tmp_path}/a.keras,~/b.keras"}, partial=True)
    assert cfg.teacher == f"{tmp_path}/a.keras,{tmp_path}/b.keras"


def test_the_options_reference_is_generated_from_the_table():
    reference = (Path(__file__).resolve().parents[1] / "docs" / "options.md").read_text()
    assert reference == config.reference(), \
        "stale: python -m fer_edge.options > docs/options.md"
    for command in config.COMMANDS.values():
        for o in command.options:
            assert f"| `{o.flag}` |" in reference
