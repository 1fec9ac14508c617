"""`fer-edge export --target ethos-u`: the full-int8 .tflite compiled by Arm's Vela (the
`ethos-u-vela` package, `pip install 'fer-edge[ethos-u]'`) for Ethos-U NPUs, one folder per NPU
configuration, and Vela's performance estimates gathered in one summary.json.

For each --npu, Vela runs on NAME.tflite with that accelerator configuration and the system
configuration and memory mode Vela itself falls back to when given none
(ethosu/vela/architecture_features.py; passed explicitly, from Vela's Arm/vela.ini, so that Vela
does not warn and the summary says what was assumed):

    Ethos-U55  Ethos_U55_High_End_Embedded  Shared_Sram           500 MHz, weights in flash
    Ethos-U65  Ethos_U65_Client_Server      Dedicated_Sram_384KB  1 GHz, weights in DRAM
    Ethos-U85  Ethos_U85_SYS_DRAM_Mid       Dedicated_Sram_384KB  1 GHz, weights in DRAM

It writes OUT/ethos-u/NPU/NAME_vela.tflite (the model to deploy: its NPU part one ethos-u custom
operator, whatever falls back to the CPU left as TFLite operators) and its summary CSV; the
figures of summary.json are read from that CSV (cycles, inference time, SRAM, flash and DRAM use,
the clock) and from Vela's own operator count (what runs on the NPU, what on the CPU, as Vela
counts them after lowering: a softmax becomes some 28 NPU operations). The compiled file's
operators are counted too, as a check that owes nothing to Vela's report.

    python -m fer_edge.converters.ethos_u models/fer_int8.tflite --out reports/ethos_u/fer_int8

compiles an existing int8 .tflite the same way (no Keras model needed).
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from fer_edge.errors import FerEdgeError

# Vela's --accelerator-config choices (vela 4.x-5.x)
NPUS = ("ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256",
        "ethos-u65-512", "ethos-u85-128", "ethos-u85-256", "ethos-u85-512", "ethos-u85-1024",
        "ethos-u85-2048")
DEFAULT_NPUS = ("ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256")
CONFIG_FILE = "Arm/vela.ini"        # in Vela's config_files folder
# Vela's defaults per family when no system configuration / memory mode is given
SYSTEM = {"ethos-u55": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
          "ethos-u65": ("Ethos_U65_Client_Server", "Dedicated_Sram_384KB"),
          "ethos-u85": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB")}
FOLDER = "ethos-u"
SUMMARY = "summary.json"
NPU_OPERATOR = "ethos-u"            # the custom operator Vela puts the NPU's part in


def vela_version() -> str:
    """Vela's version; one line naming the extra when it is not installed."""
    try:
        from ethosu.vela._version import __version__
    except ImportError:
        raise FerEdgeError("--target ethos-u needs Arm's Vela compiler: "
                           "pip install 'fer-edge[ethos-u]'") from None
    return __version__


def npu_list(npu) -> list[str]:
    """--npu ("a,b" or a sequence; None: DEFAULT_NPUS) as Vela's names, each one it knows."""
    from fer_edge.options import split_commas

    names = list(DEFAULT_NPUS) if npu in (None, "") else \
        [str(n).strip().lower() for n in split_commas(npu)]
    unknown = [n for n in names if n not in NPUS]
    if unknown:
        raise FerEdgeError(f"--npu {unknown[0]} is not an Ethos-U configuration Vela knows "
                           f"({', '.join(NPUS)})")
    return list(dict.fromkeys(names))


def system_of(npu: str) -> tuple[str, str]:
    return SYSTEM[npu.rsplit("-", 1)[0]]


def output_paths(tflite_path: Path, out_dir: Path, npus: list[str]) -> list[Path]:
    """Every file a compilation writes: each NPU's NAME_vela.tflite and CSV, and summary.json."""
    stem = tflite_path.stem
    paths = []
    for npu in npus:
        folder = out_dir / FOLDER / npu
        paths += [folder / f"{stem}_vela.tflite", folder / f"{stem}_summary_{system_of(npu)[0]}.csv"]
    return paths + [out_dir / FOLDER / SUMMARY]


def run_vela(tflite_path: Path, npu: str, folder: Path) -> str:
    """Vela on the model for one NPU, into `folder`; its printed report."""
    system, memory = system_of(npu)
    cmd = [sys.executable, "-m", "ethosu.vela", str(tflite_path), "--accelerator-config", npu,
           "--config", CONFIG_FILE, "--system-config", system, "--memory-mode", memory,
           "--output-dir", str(folder), "--show-cpu-operations"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        lines = [line for line in (p.stderr + p.stdout).splitlines() if line.strip()]
        raise FerEdgeError(f"Vela could not compile {tflite_path.name} for {npu}: "
                           f"{lines[-1] if lines else f'exit status {p.returncode}'}")
    return p.stdout


def read_operators(report: str) -> dict:
    """Vela's CPU / NPU operator counts and the CPU operators' types, from its printed report."""
    counts = {kind: int(n) for kind, n in
              re.findall(r"^(CPU|NPU) operators = (\d+)", report, re.MULTILINE)}
    if set(counts) != {"CPU", "NPU"}:
        raise FerEdgeError("Vela's report has no operator count (CPU operators = N)")
    cpu = re.findall(r"^\s+CPU: (\w+) = ", report, re.MULTILINE)
    total = counts["CPU"] + counts["NPU"]
    return {"npu_operators": counts["NPU"], "cpu_operators": counts["CPU"],
            "npu_share": counts["NPU"] / total if total else 0.0,
            "cpu_operator_types": sorted(set(cpu))}


def read_summary_csv(path: Path) -> dict:
    """The figures of Vela's summary CSV (one row) that summary.json keeps."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != 1:
        raise FerEdgeError(f"{path}: expected one row of Vela's summary, found {len(rows)}")
    r = rows[0]

    def kib(key: str) -> int:          # Vela writes memory use in KiB
        return round(float(r[key]) * 1024)

    return {"accelerator_configuration": r["accelerator_configuration"],
            "system_config": r["system_config"], "memory_mode": r["memory_mode"],
            "clock_hz": float(r["core_clock"]),
            "cycles": int(float(r["cycles_total"])), "cycles_npu": int(float(r["cycles_npu"])),
            "inference_ms": float(r["inference_time"]) * 1e3,
            "inferences_per_second": float(r["inferences_per_second"]),
            "sram_bytes": kib("sram_memory_used"),
            "flash_bytes": kib("off_chip_flash_memory_used") + kib("on_chip_flash_memory_used"),
            "dram_bytes": kib("dram_memory_used"),
            "weights_in": r["weights_storage_area"], "feature_maps_in": r["feature_map_storage_area"],
            "macs": int(float(r["nn_macs"]))}


def compiled_operators(path: Path) -> list[str]:
    """The operators of a Vela-compiled .tflite, by name (NPU_OPERATOR for the NPU's part)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        codes.append(code.CustomCode().decode() if code.CustomCode()
                     else names.get(builtin, str(builtin)))
    sg = model.Subgraphs(0)
    return [codes[sg.Operators(i).OpcodeIndex()] for i in range(sg.OperatorsLength())]


def compile_all(tflite_path, out_dir, npus=None, force: bool = False) -> tuple[list[Path], dict]:
    """Compile `tflite_path` for each NPU into OUT/ethos-u/NPU/ and write OUT/ethos-u/summary.json;
    returns the written paths and the summary."""
    from fer_edge.edge.fileio import check_writable, write_json

    tflite_path, out_dir = Path(tflite_path), Path(out_dir)
    version = vela_version()
    npus = npu_list(npus)
    for path in output_paths(tflite_path, out_dir, npus):
        check_writable(path, force)
    rows, written = [], []
    for npu in npus:
        folder = out_dir / FOLDER / npu
        report = run_vela(tflite_path, npu, folder)
        compiled = folder / f"{tflite_path.stem}_vela.tflite"
        csv_path = folder / f"{tflite_path.stem}_summary_{system_of(npu)[0]}.csv"
        ops = compiled_operators(compiled)
        rows.append({"npu": npu, **read_summary_csv(csv_path), **read_operators(report),
                     "compiled_operators": ops,
                     "model": str(compiled.relative_to(out_dir / FOLDER)),
                     "model_bytes": compiled.stat().st_size})
        written += [compiled, csv_path]
    summary = {"vela": version, "source": tflite_path.name, "config_file": CONFIG_FILE,
               "npus": rows}
    write_json(out_dir / FOLDER / SUMMARY, summary)
    return written + [out_dir / FOLDER / SUMMARY], summary


def describe(row: dict) -> str:
    """One line of a summary row, as export prints it."""
    return (f"{row['npu']}: {row['cycles']:,} cycles = {row['inference_ms']:.3f} ms at "
            f"{row['clock_hz'] / 1e6:g} MHz ({row['system_config']}, {row['memory_mode']}); "
            f"SRAM {row['sram_bytes'] / 1024:.1f} KiB, flash {row['flash_bytes'] / 1024:.1f} KiB"
            f", DRAM {row['dram_bytes'] / 1024:.1f} KiB; {row['npu_operators']} of "
            f"{row['npu_operators'] + row['cpu_operators']} operators on the NPU"
            + (f" (CPU: {', '.join(row['cpu_operator_types'])})"
               if row["cpu_operators"] else ""))


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fer_edge.converters.ethos_u",
                                     description="Compile an int8 .tflite with Vela for "
                                     "Ethos-U NPUs into OUT/ethos-u/ (summary.json).")
    parser.add_argument("model", help="a full-int8 .tflite")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--npu", default=",".join(DEFAULT_NPUS), help="NPU configurations, "
                        "comma-separated")
    parser.add_argument("--force", action="store_true", help="overwrite earlier outputs")
    args = parser.parse_args(argv)
    try:
        _, summary = compile_all(args.model, args.out, args.npu, force=args.force)
    except FerEdgeError as e:
        print(f"fer-edge: error: {e}", file=sys.stderr)
        return 2
    for row in summary["npus"]:
        print(describe(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
