"""The edge runtime (fer_edge.edge) is TensorFlow-free: every module in it imports, and the shipped
model classifies a face, in a process where TensorFlow and Keras cannot be imported at all."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import fer_edge.edge
from cli_helpers import run_python_ok

EDGE_MODULES = sorted(m.name for m in pkgutil.iter_modules(fer_edge.edge.__path__))

BLOCKER = """
import importlib.abc, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is not allowed in the edge runtime")
        return None

sys.meta_path.insert(0, NoTensorFlow())
"""


def test_edge_package_lists_its_modules():
    assert {"classify", "detect", "preprocessing", "runtime", "sources", "tflite_meta",
            "track", "outputs", "fileio"} <= set(EDGE_MODULES)


def test_every_edge_module_imports_without_tensorflow():
    code = BLOCKER + (
        "import importlib\n"
        f"for name in {EDGE_MODULES!r}:\n"
        "    importlib.import_module('fer_edge.edge.' + name)\n"
        "from fer_edge import Classifier\n"
        "import numpy as np\n"
        "faces = Classifier(no_detect=True).faces(np.full((48, 48), 128, np.uint8))\n"
        "assert len(faces) == 1, faces\n"
        "print('EDGE-OK')\n")
    run_python_ok(code, "EDGE-OK")


def test_the_blocker_really_blocks():
    p = subprocess.run([sys.executable, "-c", BLOCKER + "import tensorflow\n"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "not allowed in the edge runtime" in p.stderr
