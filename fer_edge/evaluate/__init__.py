"""`fer-edge evaluate`: every variant (Keras, fp32/fp16/dynamic/int8 TFLite, float32/int8 ONNX)
side by side on the same images: accuracy per class, confusion, size, latency, throughput,
agreement.

TFLite variants run on LiteRT, ONNX ones on onnxruntime (and, when the `openvino` package is
installed, on OpenVINO's CPU runtime too, as a row of their own); TensorFlow is imported only
when a `.keras` model is given.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .. import options, data as fdata, defaults
from ..errors import FerEdgeError
from ..machine import host
from ..edge.fileio import check_writable, write_json, write_text
from ..edge.preprocessing import LABELS, batch_to_float, fer2013_answers, flip_tta, labels_for


class _KerasVariant:
    kind = "keras"

    def __init__(self, path: Path, threads: int | None):
        from ..edge.sources import quiet_native_stderr

        with quiet_native_stderr(always=True):   # TensorFlow's start-up lines (absl, CUDA)
            import tensorflow as tf

            from ..training.keras_io import KerasPredictor, load_keras

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TF already initialised in this process
                pass
        with quiet_native_stderr(always=True):
            self.model = load_keras(path)
        self.params = int(self.model.count_params())
        self.predict = KerasPredictor(self.model)


class _EdgeVariant:
    """A .tflite on LiteRT or a .onnx on onnxruntime, as classify runs it (runtime.open_model)."""

    def __init__(self, path: Path, threads: int | None):
        from ..edge.runtime import open_model
        from ..edge.sources import quiet_native_stderr

        with quiet_native_stderr(always=True):   # LiteRT's INFO line about its delegate
            self.model = open_model(path, threads=threads)
        self.kind = self.model.kind
        self.params = (self.model.meta or {}).get("params")

    def predict(self, faces_u8, batch_size=64):
        return self.model.canonical_scores(self.model.predict(faces_u8, batch_size))


class _MicroVariant:
    """An int8 .tflite on TFLite Micro's reference interpreter (what a microcontroller runs),
    one face per invoke."""

    kind = "int8-micro"

    def __init__(self, path: Path):
        from ..converters.micro import micro_interpreter
        from ..edge.runtime import EmotionModel

        self.lite = EmotionModel(path)            # labels, quantization and label order
        self.params = (self.lite.meta or {}).get("params")
        self.interpreter = micro_interpreter(path.read_bytes(), arena_size=None)

    def predict(self, faces_u8, batch_size=1):
        out = np.zeros((len(faces_u8), len(self.lite.labels)), np.float32)
        for i in range(len(faces_u8)):
            x = self.lite.quantize(batch_to_float(faces_u8[i:i + 1]))
            self.interpreter.set_input(x, 0)
            self.interpreter.invoke()
            out[i] = self.lite.dequantize(self.interpreter.get_output(0))[0]
        return self.lite.canonical_scores(out)


class _OpenVINOVariant:
    """A .onnx on OpenVINO's CPU runtime, which reads the file as it is (an int8 QDQ model runs
    on its int8 kernels); labels and their order from the onnxruntime variant's record. Float
    parts run in float32: OpenVINO's default on CPUs with bf16 or AMX is bf16, which changes a
    float model's answers and (OpenVINO 2026.4) fails to compile the int8 QDQ model."""

    def __init__(self, path: Path, threads: int | None, onnx_variant: _EdgeVariant):
        import openvino as ov

        self.labelled, self.params = onnx_variant.model, onnx_variant.params
        self.kind = onnx_variant.kind.replace("onnx-", "openvino-", 1)
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "f32",
                  **({"INFERENCE_NUM_THREADS": int(threads)} if threads else {})}
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def predict(self, faces_u8, batch_size=64):
        out = np.zeros((len(faces_u8), len(self.labelled.labels)), np.float32)
        for i in range(0, len(faces_u8), batch_size):
            chunk = batch_to_float(faces_u8[i:i + batch_size])
            result = self.request.infer({0: chunk})
            out[i:i + len(chunk)] = result[self.compiled.output(0)]
        return self.labelled.canonical_scores(out)


def openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class _FlipTTA:
    """A variant whose scores average each face and its mirror image (`--tta`)."""

    def __init__(self, variant):
        self.variant, self.kind, self.params = variant, f"{variant.kind}+tta", variant.params

    def predict(self, faces_u8, batch_size=64):
        # a face and its mirror go through in the same batch, as in `classify --tta`
        return flip_tta(self.variant.predict, faces_u8, batch_size=2 * batch_size)


def load_variant(path, threads: int | None = 1):
    path = Path(path)
    if not path.exists():
        raise FerEdgeError(f"model not found: {path}")
    if path.suffix == ".keras":
        return _KerasVariant(path, threads)
    if path.suffix in (".tflite", ".onnx"):
        return _EdgeVariant(path, threads)
    raise FerEdgeError(f"{path}: unknown model type (expected .keras, .tflite or .onnx)")


def latency_ms(variant, face_u8: np.ndarray, runs: int, warmup: int) -> dict:
    """Batch-1 latency per face: warm-up, then p50/p95 over `runs` single-face calls."""
    one = face_u8[None]
    for _ in range(warmup):
        variant.predict(one, 1)
    times = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        variant.predict(one, 1)
        times[i] = time.perf_counter() - t
    return {"p50": float(np.percentile(times, 50) * 1e3), "p95": float(np.percentile(times, 95) * 1e3),
            "runs": runs}


@options.takes("evaluate")
def evaluate(models, data=None, split: str | None = None, threads: int | None = None,
             out=None, limit: int | None = None, latency_runs: int | None = None,
             force: bool = False,
             tta: bool = False, micro: bool = False, votes=None) -> dict:
    """Evaluate each model on the same images; the first model is the reference. With `tta`,
    each model gets a second row scored with horizontal-flip averaging (reported separately);
    with `micro`, each int8 .tflite also runs on TFLite Micro's interpreter ("int8-micro"); each
    .onnx runs on onnxruntime ("onnx-int8") and, with openvino installed, on OpenVINO
    ("openvino-int8").
    Where FER+ votes are found beside the data (or given as `votes`), each row also gets the
    FER+ majority benchmark and the mean vote agreement ("ferplus", votes.py)."""
    from ..training.runs import resolve_data

    if isinstance(models, (str, Path)):
        models = [models]
    if not models:
        raise FerEdgeError("no models given: pass --models A.keras B.tflite ...")
    options.check("evaluate", {"models": [str(m) for m in models], "data": data, "split": split,
                              "threads": threads, "out": out, "limit": limit,
                              "latency_runs": latency_runs, "force": force, "tta": tta,
                              "micro": micro, "votes": votes})
    models = [Path(m) for m in models]
    data = resolve_data(data, models[0] if models[0].suffix == ".keras" else None)
    if out:
        out = Path(out)
        for name in ("report.md", "report.json"):
            check_writable(out / name, force)
    ds = fdata.load(data, limit=limit, votes=votes)
    sp = ds.split(split)
    if not len(sp):
        raise FerEdgeError(f"split '{split}' of {data} is empty")

    variants, ref_pred = [], None
    for path in models:
        print(f"evaluating {path} on {split} ({len(sp)} images)", file=sys.stderr, flush=True)
        v = load_variant(path, threads)
        runs = [v, _FlipTTA(v)] if tta else [v]
        if micro and v.kind == "int8":
            runs.append(_MicroVariant(path))
        if path.suffix == ".onnx" and openvino_installed():
            runs.append(_OpenVINOVariant(path, threads, v))
        for run in runs:
            row, pred = _score(run, path, sp, threads, latency_runs)
            if ref_pred is None:
                ref_pred = pred
            row["agreement_with_reference"] = float((pred == ref_pred).mean())
            variants.append(row)
    result = {"split": split, "n": int(len(sp)), "data": str(data), "votes": ds.votes_path,
              "data_fingerprint": ds.fingerprint, "reference": str(models[0]), "host": host(),
              "variants": variants}
    if out:
        write_reports(result, out)
    return result


def tied_top(scores: np.ndarray) -> int:
    """Faces whose highest score is shared by two or more classes. An int8 model's softmax output
    moves in steps of 1/256, so close calls tie and argmax takes the first label in LABELS order:
    a share of what int8 loses against its float model is these ties, not the network's error."""
    return int(((scores == scores.max(1, keepdims=True)).sum(1) > 1).sum())


def _score(variant, path: Path, sp, threads, latency_runs: int) -> tuple[dict, np.ndarray]:
    """One report row for `variant` on split `sp`, and its predicted labels."""
    from .. import report, votes

    t = time.perf_counter()
    scores = variant.predict(sp.x)
    batch_s = time.perf_counter() - t
    pred = fer2013_answers(scores)
    ferplus = {} if sp.votes is None else {"ferplus": votes.majority_summary(sp.votes, scores)}
    return {"model": str(path), "kind": variant.kind, "tta": isinstance(variant, _FlipTTA),
            "size_bytes": path.stat().st_size, "params": variant.params,
            **report.summary(sp.y, pred), **ferplus, "tied_top": tied_top(scores),
            "latency_ms": latency_ms(variant, sp.x[0], latency_runs, defaults.EVAL_WARMUP),
            "threads": threads,
            "throughput_ips": float(len(sp) / batch_s) if batch_s > 0 else None,
            "n": int(len(sp))}, pred


def _short_names(variants: list[dict]) -> list[str]:
    """Each model's file name, with its folder where two models share a name (a seed run's
    fer_int8.tflite beside the shipped one), so tables and confusion files stay apart."""
    paths = [Path(r["model"]) for r in variants]
    names = [p.name for p in set(paths)]   # a model with and without --tta is one model
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def _file_stem(row, short: str) -> str:
    """A row's confusion-picture name: a .onnx's apart from the .tflite of the same name, its
    OpenVINO row apart from its onnxruntime row."""
    runtime = "_openvino" if row["kind"].startswith("openvino") else \
        "_onnx" if short.endswith(".onnx") else ""
    return Path(short.replace("/", "_")).stem + runtime + ("_tta" if row.get("tta") else "")


def _variant_name(row, short: str) -> str:
    return f"{Path(short).with_suffix('')} ({row['kind']})"


def markdown(result: dict) -> str:
    lines = [f"# fer-edge evaluation: `{result['split']}` split, {result['n']} images", "",
             f"Reference for agreement: `{result['reference']}`. Latency: one face through the "
             f"model's predictor as classify calls it (the input's conversion included, no "
             f"detection), batch 1, {result['variants'][0]['threads']} thread(s), after warm-up"
             + (f", on {result['host']['cpu']}." if result.get("host") else "."), "",
             "| model | kind | size (KB) | params | top-1 | macro-F1 | p50 ms | p95 ms | img/s (batched) | agreement |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    shorts = _short_names(result["variants"])
    for r, short in zip(result["variants"], shorts):
        lines.append(
            f"| `{short}` | {r['kind']} | {r['size_bytes'] / 1024:.0f} | "
            f"{r['params'] if r['params'] is not None else '—'} | {r['top1']:.2%} | "
            f"{r['macro_f1']:.4f} | {r['latency_ms']['p50']:.3f} | {r['latency_ms']['p95']:.3f} | "
            f"{r['throughput_ips']:.0f} | {r['agreement_with_reference']:.2%} |")
    lines += ["", "## Per-class accuracy (recall)", "",
              "| model | " + " | ".join(LABELS) + " |", "|---|" + "---:|" * len(LABELS)]
    for r, short in zip(result["variants"], shorts):
        pc = r["per_class_accuracy"]
        lines.append(f"| {_variant_name(r, short)} | " + " | ".join(f"{pc[l]:.2%}" for l in LABELS) + " |")
    for r, short in zip(result["variants"], shorts):
        lines += ["", f"## Confusion matrix: {_variant_name(r, short)} (rows true, columns predicted)", "",
                  "| | " + " | ".join(LABELS) + " |", "|---|" + "---:|" * len(LABELS)]
        for lab, row in zip(LABELS, r["confusion_matrix"]):
            lines.append(f"| **{lab}** | " + " | ".join(str(v) for v in row) + " |")
    if all("ferplus" in r for r in result["variants"]):
        lines += ferplus_markdown(result, shorts)
    return "\n".join(lines) + "\n"


def ferplus_markdown(result: dict, shorts: list[str]) -> list[str]:
    """The FER+ section of the report: the majority benchmark as FER+ results are published."""
    from ..votes import MAJORITY_LABELS

    first = result["variants"][0]["ferplus"]
    widths = {len(r["ferplus"]["confusion_matrix"][0]) for r in result["variants"]}
    seven = ("These models answer FER2013's 7 classes, so the contempt faces "
             f"({first['support']['contempt']} here) count as errors." if widths == {7} else
             "8-class models answer all 8; the 7-class ones' contempt faces "
             f"({first['support']['contempt']} here) count as their errors." if 7 in widths else
             "These models answer all 8 emotions.")
    lines = ["", f"## FER+ majority benchmark ({first['n']} of {result['n']} faces)", "",
             f"Votes: `{result.get('votes')}`. FER+'s published protocol: votes of 1 dropped; a "
             "face counts when one emotion holds more than half of the remaining votes and is "
             "one of FER+'s 8 emotions (unknown and not-a-face majorities are left out). "
             f"{seven} Vote agreement: the mean "
             f"share of a face's 10 annotators who chose the model's answer, over the "
             f"{first['n_with_votes']} faces with votes.", "",
             "| model | kind | FER+ majority top-1 | vote agreement | "
             + " | ".join(MAJORITY_LABELS) + " |",
             "|---|---|---:|---:|" + "---:|" * len(MAJORITY_LABELS)]
    for r, short in zip(result["variants"], shorts):
        f = r["ferplus"]
        lines.append(f"| `{short}` | {r['kind']} | {f['top1']:.2%} | {f['vote_agreement']:.2%} | "
                     + " | ".join(f"{f['per_class_accuracy'][lab]:.2%}"
                                  for lab in MAJORITY_LABELS) + " |")
    for r, short in zip(result["variants"], shorts):
        predicted = labels_for(len(r["ferplus"]["confusion_matrix"][0]))
        lines += ["", f"### FER+ confusion: {_variant_name(r, short)} (rows the majority, "
                  "columns predicted)", "",
                  "| | " + " | ".join(predicted) + " |", "|---|" + "---:|" * len(predicted)]
        for lab, row in zip(MAJORITY_LABELS, r["ferplus"]["confusion_matrix"]):
            lines.append(f"| **{lab}** | " + " | ".join(str(v) for v in row) + " |")
    return lines


def write_reports(result: dict, out: Path) -> None:
    from .. import report

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", result)
    write_text(out / "report.md", markdown(result))
    for r, short in zip(result["variants"], _short_names(result["variants"])):
        report.plot_confusion(r["confusion_matrix"],
                              f"{_variant_name(r, short)} — {result['split']} top-1 {r['top1']:.2%}",
                              out / f"confusion_{_file_stem(r, short)}.png")
    report.plot_tradeoff(result["variants"], out / "tradeoff.png")
