"""The runtime install for real: `pip install .` without extras (numpy, OpenCV, LiteRT, fire) in a
fresh virtualenv. classify and models list work there, and each command that needs an extra
ends, before any output or work, in one line naming the extra to install.

The virtualenv is built once per session from a copy of the package (about 20 s with pip's
cache: pip must reach the index or its mirror; without it the tests are skipped, saying why),
hence `slow`."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "fer_edge", "converters", "calibration",
           "models")
EXTRAS = ("keras", "tensorflow", "sklearn", "matplotlib", "seaborn", "pandas", "ray", "pyarrow")


def _runtime_requirements() -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return [r.strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip()]


@pytest.fixture(scope="session")
def runtime(tmp_path_factory) -> Path:
    """The bin/ folder of a virtualenv holding fer-edge and its runtime requirements only."""
    root = tmp_path_factory.mktemp("runtime_install")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:          # a copy: pip's build writes build/ beside setup.cfg
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info", "build"))
        else:
            shutil.copy2(ROOT / name, src / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    for args in (_runtime_requirements(), ["--no-deps", str(src)]):
        p = subprocess.run(pip + args, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            pytest.skip(f"pip could not install {' '.join(args)}: {p.stderr.strip()[-300:]}")
    return venv / "bin"


def _run(runtime: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(runtime / "fer-edge"), *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_the_runtime_install_holds_no_extra(runtime):
    p = subprocess.run([str(runtime / "python"), "-c",
                        "import importlib.util as u; print([m for m in "
                        f"{EXTRAS!r} if u.find_spec(m)])"], capture_output=True, text=True)
    assert p.stdout.strip() == "[]", p.stdout + p.stderr


def test_classify_models_list_and_help_work_there(runtime, tmp_path):
    p = _run(runtime, "classify", ROOT / "examples" / "astronaut.jpg", "--format", "json",
             cwd=tmp_path)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    p = _run(runtime, "models", "list", cwd=tmp_path)
    assert p.returncode == 0 and "ferplus_int8.tflite" in p.stdout, p.stderr
    assert "site-packages" in p.stdout            # the installed files' folder, not models/
    p = _run(runtime, "train", "--help", cwd=tmp_path)
    assert p.returncode == 0 and "--learning-rate=LEARNING_RATE" in p.stdout, p.stderr


@pytest.mark.parametrize("argv,line", [
    (["train", "--data", "{tmp}/data", "--arch", "tiny", "--out", "{tmp}/run"],
     "train needs Keras, TensorFlow and scikit-learn: pip install 'fer-edge[train]'"),
    (["export", "--model", str(ROOT / "models" / "fer.keras"), "--out", "{tmp}/x"],
     "export needs Keras and TensorFlow: pip install 'fer-edge[train]'"),
    (["evaluate", "--models", "default", "--data", "{tmp}/data"],
     "evaluate needs scikit-learn: pip install 'fer-edge[train]'"),
    (["evaluate", "--models", "default", str(ROOT / "models" / "fer.keras"), "--data",
      "{tmp}/data", "--out", "{tmp}/report"],
     "evaluate needs scikit-learn, Keras, TensorFlow, matplotlib, seaborn and pandas: pip "
     "install 'fer-edge[train]'"),
    (["batch", str(ROOT / "examples"), "--out", "{tmp}/b"],
     "batch needs Ray, pyarrow and pandas: pip install 'fer-edge[ray]'"),
], ids=["train", "export", "evaluate", "evaluate-keras-out", "batch"])
def test_a_command_that_needs_an_extra_names_it_in_one_line(runtime, tmp_path, argv, line):
    (tmp_path / "data" / "train").mkdir(parents=True)
    p = _run(runtime, *[a.format(tmp=tmp_path) for a in argv], cwd=tmp_path)
    assert (p.returncode, p.stdout) == (2, ""), p.stdout + p.stderr
    assert p.stderr == f"fer-edge: error: {line}\n"
    assert [f.name for f in tmp_path.iterdir()] == ["data"]         # nothing written
