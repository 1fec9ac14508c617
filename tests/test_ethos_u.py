"""Arm Ethos-U NPUs: `export --target ethos-u` compiles the int8 .tflite with Vela per NPU and
gathers Vela's own estimates (its summary CSV, its operator count) in summary.json; the readers
checked on Vela's formats; bad --npu values and a missing Vela are one line, before anything is
written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge.converters import ethos_u
from fer_edge.errors import FerEdgeError

vela = pytest.importorskip("ethosu.vela", reason="pip install 'fer-edge[ethos-u]' (the test "
                           "extra has it)")

NPUS = ["ethos-u55-128", "ethos-u65-256"]


@pytest.fixture(scope="module")
def compiled(synth_data, tmp_path_factory):
    from fer_edge.export import export
    from fer_edge.training import archs

    root = tmp_path_factory.mktemp("ethos_u")
    archs.build("tiny").save(root / "tiny.keras")
    written = export(root / "tiny.keras", quantize="int8", data=synth_data, calib=8,
                     target="ethos-u", npu=",".join(NPUS))
    return root, written


def test_export_writes_each_npu_and_the_summary(compiled):
    root, written = compiled
    rel = sorted(str(p.relative_to(root)) for p in written)
    assert rel == sorted([
        "fer_int8.tflite", "ethos-u/summary.json",
        "ethos-u/ethos-u55-128/fer_int8_vela.tflite",
        "ethos-u/ethos-u55-128/fer_int8_summary_Ethos_U55_High_End_Embedded.csv",
        "ethos-u/ethos-u65-256/fer_int8_vela.tflite",
        "ethos-u/ethos-u65-256/fer_int8_summary_Ethos_U65_Client_Server.csv"])
    summary = json.loads((root / "ethos-u" / "summary.json").read_text())
    assert summary["source"] == "fer_int8.tflite" and summary["vela"]
    assert [r["npu"] for r in summary["npus"]] == NPUS
    for row in summary["npus"]:
        assert row["cycles"] > 0 and row["inference_ms"] > 0
        # Vela's time is its cycle count at the clock it assumed
        assert row["inference_ms"] == pytest.approx(row["cycles"] / row["clock_hz"] * 1e3,
                                                    rel=1e-3)
        assert row["sram_bytes"] > 0 and row["flash_bytes"] + row["dram_bytes"] > 0
        # the tiny model's ops (conv, ReLU, pooling, mean, dense, softmax) all run on the NPU
        assert row["cpu_operators"] == 0 and row["npu_share"] == 1.0 and row["npu_operators"]
        assert row["compiled_operators"] == [ethos_u.NPU_OPERATOR]
        model = root / "ethos-u" / row["model"]
        assert model.stat().st_size == row["model_bytes"]
    u55, u65 = summary["npus"]
    assert (u55["clock_hz"], u55["system_config"], u55["memory_mode"]) == \
        (500e6, "Ethos_U55_High_End_Embedded", "Shared_Sram")
    assert (u65["clock_hz"], u65["system_config"], u65["memory_mode"]) == \
        (1e9, "Ethos_U65_Client_Server", "Dedicated_Sram_384KB")
    assert u55["flash_bytes"] > 0 and u55["weights_in"] == "Off-chip Flash"
    assert u65["dram_bytes"] > 0 and u65["weights_in"] == "DRAM"


def test_the_summary_is_vela_csv_read_as_it_is(compiled):
    root, _ = compiled
    import csv

    summary = json.loads((root / "ethos-u" / "summary.json").read_text())
    row = summary["npus"][0]
    with open(root / "ethos-u" / "ethos-u55-128" /
              "fer_int8_summary_Ethos_U55_High_End_Embedded.csv", newline="") as f:
        raw = next(csv.DictReader(f))
    assert row["cycles"] == int(float(raw["cycles_total"]))
    assert row["inference_ms"] == pytest.approx(float(raw["inference_time"]) * 1e3)
    assert row["sram_bytes"] == round(float(raw["sram_memory_used"]) * 1024)
    assert row["flash_bytes"] == round(float(raw["off_chip_flash_memory_used"]) * 1024)


def test_reading_vela_reports(tmp_path):
    report = """
Network summary for m
CPU operators = 2 (5.0%)
   CPU: Cos = model/cos (inputs [1, 7], outputs [1, 7])
   CPU: Cos = model/cos_1 (inputs [1, 7], outputs [1, 7])
NPU operators = 38 (95.0%)
   NPU: Conv2D = model/conv (inputs [1, 48, 48, 1], outputs [1, 48, 48, 16])
"""
    ops = ethos_u.read_operators(report)
    assert ops == {"npu_operators": 38, "cpu_operators": 2, "npu_share": 0.95,
                   "cpu_operator_types": ["Cos"]}
    with pytest.raises(FerEdgeError, match="no operator count"):
        ethos_u.read_operators("Network summary for m\n")
    (tmp_path / "two.csv").write_text("cycles_total\n1\n2\n")
    with pytest.raises(FerEdgeError, match="expected one row"):
        ethos_u.read_summary_csv(tmp_path / "two.csv")


def test_npu_names():
    assert ethos_u.npu_list(None) == list(ethos_u.DEFAULT_NPUS)
    assert ethos_u.npu_list("Ethos-U55-64, ethos-u85-256") == ["ethos-u55-64", "ethos-u85-256"]
    assert {"ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256"} <= \
        set(ethos_u.DEFAULT_NPUS)
    with pytest.raises(FerEdgeError, match="--npu ethos-u99-1 is not an Ethos-U configuration"):
        ethos_u.npu_list("ethos-u55-128,ethos-u99-1")


def test_every_known_npu_is_one_vela_accepts():
    """NPUS is Vela's own --accelerator-config list."""
    from ethosu.vela.architecture_features import Accelerator

    assert set(ethos_u.NPUS) <= {a.value for a in Accelerator}


def test_bad_ethos_u_options_are_one_line_and_write_nothing(tmp_path, capsys):
    from fer_edge.cli import main

    from fer_edge.training import archs

    archs.build("tiny").save(tmp_path / "m.keras")
    for args, message in [
            (["--quantize", "float16", "--target", "ethos-u"],
             "--target ethos-u needs --quantize int8"),
            (["--target", "ethos-u", "--npu", "ethos-u55-128,ethos-u42"],
             "--npu ethos-u42 is not an Ethos-U configuration Vela knows"),
            (["--target", "litert", "--npu", "ethos-u55-128"], "--npu is for --target ethos-u")]:
        rc = main(["export", "--model", str(tmp_path / "m.keras"), "--out",
                   str(tmp_path / "out"), *args])
        err = capsys.readouterr().err
        assert rc == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_missing_vela_is_one_line_before_anything_is_written(tmp_path):
    """A sitecustomize on PYTHONPATH makes `ethosu` not importable, as when it is absent."""
    from fer_edge.training import archs

    archs.build("tiny").save(tmp_path / "m.keras")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nfor name in ('ethosu', 'ethosu.vela', 'ethosu.vela._version'):\n"
        "    sys.modules[name] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run([sys.executable, "-m", "fer_edge.cli", "export", "--model",
                        str(tmp_path / "m.keras"), "--out", str(tmp_path / "out"),
                        "--target", "ethos-u"], capture_output=True, text=True, timeout=180,
                       env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("fer-edge: error: --target ethos-u needs Arm's Vela compiler: "
                                "pip install 'fer-edge[ethos-u]'")
    assert not (tmp_path / "out").exists()


def test_compile_an_existing_tflite_from_the_command_line(compiled, tmp_path):
    root, _ = compiled
    shutil.copy(root / "fer_int8.tflite", tmp_path / "m_int8.tflite")
    r = subprocess.run([sys.executable, "-m", "fer_edge.converters.ethos_u",
                        str(tmp_path / "m_int8.tflite"), "--out", str(tmp_path / "o"),
                        "--npu", "ethos-u55-64"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ethos-u55-64: ") and "operators on the NPU" in r.stdout
    assert (tmp_path / "o" / "ethos-u" / "ethos-u55-64" / "m_int8_vela.tflite").exists()
    again = subprocess.run([sys.executable, "-m", "fer_edge.converters.ethos_u",
                            str(tmp_path / "m_int8.tflite"), "--out", str(tmp_path / "o"),
                            "--npu", "ethos-u55-64"], capture_output=True, text=True, timeout=180)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr
