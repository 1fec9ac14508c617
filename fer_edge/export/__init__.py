"""`fer-edge export` and `fer-edge calibrate`: Keras model -> TFLite variants (and ONNX, TFLite
Micro sources, Ethos-U NPU binaries: --target)."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import options, data as fdata, defaults
from ..errors import FerEdgeError
from ..edge.fileio import check_writable, write_bytes, write_json
from ..training.runs import resolve_data


def _modes(quantize: str) -> list[str]:
    """The variants --quantize asks for (options.check has accepted its value)."""
    if quantize == "all":
        return list(defaults.QUANTIZE_MODES)
    return ["float32" if quantize == "none" else quantize]


@options.takes("calibrate")
def calibrate(data, size: int | None = None, seed: int | None = None, out=None,
              force: bool = False) -> Path:
    """Write a stratified, seeded calibration manifest (ids of Training images only)."""
    from ..calibration import manifest

    options.check("calibrate", {"data": data, "size": size, "seed": seed, "out": out,
                               "force": force})
    out = check_writable(out or defaults.calib_manifest(), force)
    ds = fdata.load(data, val_fraction=0.0)
    m = manifest.make(ds.split("train"), int(size), int(seed), source=str(data))
    write_json(out, m)
    print(f"wrote {out}: {m['size']} Training images, seed {m['seed']}", file=sys.stderr)
    return out


def calibration_images(data, calib=None, seed: int | None = None):
    """(uint8 images, description) for int8: a manifest path, a size N, or the committed manifest."""
    if seed is None:
        seed = options.defaults_of("calibrate")["seed"]
    from ..calibration import manifest

    ds = fdata.load(data, val_fraction=0.0)
    if calib is None or (isinstance(calib, str) and not calib.isdigit()):
        path = Path(calib) if calib else defaults.calib_manifest()
        m = manifest.load(path)
        label = str(path.name)
    else:
        m = manifest.make(ds.split("train"), int(calib), seed, source=str(data))
        label = f"{int(calib)} images (seed {seed})"
    return manifest.images(m, ds), {"calibration": {"manifest": label, "size": m["size"],
                                                    "seed": m["seed"], "split": m["split"]}}


@options.takes("export")
def export(model, quantize=None, out=None, data=None, calib=None, force: bool = False,
           target: str | None = None, npu=None) -> list[Path]:
    """Convert a trained .keras model to TFLite variants; returns the written paths. With
    target "micro", the int8 model also becomes C++ source for TFLite Micro
    (converters/micro.py); with "ethos-u" it is compiled by Vela for each `npu`
    (converters/ethos_u.py); "onnx" writes fer_float32.onnx / fer_int8.onnx instead of .tflite
    files (converters/onnx_export.py). With "web", `model` is an exported .tflite and `out` gets
    the static page that runs it in the browser (fer_edge/web, no TensorFlow)."""
    options.check("export", {"model": model, "quantize": quantize, "out": out, "data": data,
                            "calib": calib, "force": force, "target": target, "npu": npu})
    model_path = Path(model)
    if target == "web":
        return _export_web(model_path, out, force, data, calib, npu)
    if model_path.suffix == ".tflite":
        raise FerEdgeError(f"--model {model_path} is a .tflite: --target {target} converts a "
                           f"trained .keras model (a .tflite is for --target web)")
    modes = _modes(quantize)
    out_dir = Path(out) if out else model_path.parent
    if npu is not None and target != "ethos-u":
        raise FerEdgeError("--npu is for --target ethos-u")
    from ..training.keras_io import load_keras

    if target == "onnx":
        from ..converters.onnx_export import onnx_paths

        modes = _check_onnx(quantize, modes)
        targets = onnx_paths(out_dir, modes)
    else:
        targets = {m: out_dir / defaults.EXPORT_NAMES[m] for m in modes}
    if target == "micro":
        _check_micro(modes, targets, force)
    if target == "ethos-u":
        npus = _check_ethos_u(modes, targets, out_dir, npu, force)
    for t in targets.values():
        check_writable(t, force)
    from ..training.qat import plain

    keras_model = plain(load_keras(model_path))   # (its parameter count goes in the metadata)
    calib_images, extra = None, {}
    if "int8" in modes:
        calib_images, extra = calibration_images(resolve_data(data, model_path), calib)

    if target == "onnx":
        from ..converters.onnx_export import convert
    else:
        from ..converters.tflite import convert
    from ..edge.sources import quiet_native_stderr

    base = {"params": int(keras_model.count_params()), "source_model": model_path.name}
    written = []
    for mode, path in targets.items():
        print(f"converting {model_path.name} -> {path} ({mode})", file=sys.stderr, flush=True)
        int8 = mode == "int8"
        with quiet_native_stderr():   # the converter's lines ("fully_quantize: 0, ...")
            buf = convert(keras_model, mode, calib_images if int8 else None,
                          {**base, **(extra if int8 else {})})
        write_bytes(path, buf)
        print(f"wrote {path} ({len(buf) / 1024:.0f} KB)", file=sys.stderr)
        written.append(path)
    if target == "micro":
        written += _write_micro(targets["int8"], force)
    if target == "ethos-u":
        written += _write_ethos_u(targets["int8"], out_dir, npus, force)
    return written


def _export_web(model_path: Path, out, force: bool, data, calib, npu) -> list[Path]:
    """--target web: the page for an exported .tflite (fer_edge/web builds it)."""
    from ..web import build

    unused = [options.flag(n) for n, v in (("data", data), ("calib", calib), ("npu", npu))
              if v is not None]
    if unused:
        raise FerEdgeError(f"{unused[0]} is for converting a .keras model, not for --target web")
    written = build(model_path, out, force=force)
    print(f"wrote the page for {model_path.name} in {written[0].parent} ({len(written)} files, "
          f"{sum(p.stat().st_size for p in written) / 2**20:.1f} MB): serve that folder (e.g. "
          f"python -m http.server -d {written[0].parent}) and open index.html", file=sys.stderr)
    return written


def _check_onnx(quantize: str, modes: list[str]) -> list[str]:
    """--target onnx: float32 and/or int8 (QDQ; "all" is both), and its toolchain installed."""
    from ..converters import onnx_export

    if quantize == "all":
        modes = list(onnx_export.MODES)
    wrong = [m for m in modes if m not in onnx_export.MODES]
    if wrong:
        raise FerEdgeError(f"--target onnx writes float32 or int8 (QDQ), not {wrong[0]}")
    onnx_export.check_toolchain()
    return modes


def _check_ethos_u(modes: list[str], targets: dict, out_dir: Path, npu, force: bool) -> list:
    """--target ethos-u: an int8 model, Vela installed, known NPUs, files that may be written."""
    if "int8" not in modes:
        raise FerEdgeError("--target ethos-u needs --quantize int8 (Ethos-U NPUs run the "
                           "full-integer model)")
    from ..converters import ethos_u

    ethos_u.vela_version()
    npus = ethos_u.npu_list(npu)
    for path in ethos_u.output_paths(targets["int8"], out_dir, npus):
        check_writable(path, force)
    return npus


def _write_ethos_u(tflite_path: Path, out_dir: Path, npus: list, force: bool) -> list[Path]:
    from ..converters import ethos_u

    written, summary = ethos_u.compile_all(tflite_path, out_dir, npus, force=force)
    for row in summary["npus"]:
        print(ethos_u.describe(row), file=sys.stderr)
    print(f"wrote {written[-1]}", file=sys.stderr)
    return written


def _check_micro(modes: list[str], targets: dict, force: bool) -> None:
    """--target micro: an int8 model, TFLite Micro's interpreter, files that may be written."""
    if "int8" not in modes:
        raise FerEdgeError("--target micro needs --quantize int8 (microcontrollers run the "
                           "full-integer model)")
    from ..converters import micro

    micro.micro_runtime()      # the arena is measured on it: missing -> one line, now
    for path in micro.source_paths(targets["int8"]):
        check_writable(path, force)


def _write_micro(tflite_path: Path, force: bool) -> list[Path]:
    from ..converters import micro

    header, source, facts = micro.write_sources(tflite_path, force=force)
    print(f"wrote {header} and {source}: {facts['model_bytes']:,} bytes of model (flash), "
          f"tensor arena {facts['arena_bytes']:,} bytes (measured minimum "
          f"{facts['arena_min_bytes']:,}), ops {', '.join(facts['ops'])}", file=sys.stderr)
    return [header, source]
