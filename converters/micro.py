"""`fer-edge export --quantize int8 --target micro`: the int8 model as C++ source for TensorFlow
Lite Micro (ESP32-S3, Arm Cortex-M and other microcontrollers).

Writes, beside `fer_int8.tflite`, `fer_int8_model.h` and `fer_int8_model.cc`: the model's bytes
as a 16-byte aligned array with its length, the labels, the input and output scale and zero point,
the tensor-arena size the model needs, and (when the TFLite Micro headers are on the include
path) a function registering exactly the ops the model uses in a MicroMutableOpResolver.

The ops are read from the model; an op TFLite Micro has no kernel for fails the export with one
line. The arena size is measured on TFLite Micro's own interpreter (the `tflite-micro` package,
`pip install 'fer-edge[micro]'`): the smallest arena that allocates and runs the model, found by
bisection, plus ARENA_MARGIN for the target's alignment and pointer-size differences.
"""

from __future__ import annotations

import re
from pathlib import Path

from fer_edge.edge import tflite_meta
from fer_edge.errors import FerEdgeError

ARENA_MARGIN = 0.10            # on top of the measured minimum (measured on a 64-bit host)
ARENA_ALIGN = 1024             # the size written is rounded up to whole KiB
BYTES_PER_LINE = 12

# TFLite builtin op -> MicroMutableOpResolver method, for the ops TFLite Micro has kernels for
# (tensorflow/lite/micro/micro_mutable_op_resolver.h).
MICRO_OPS = {
    "ADD": "AddAdd", "AVERAGE_POOL_2D": "AddAveragePool2D", "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize", "FULLY_CONNECTED": "AddFullyConnected",
    "HARD_SWISH": "AddHardSwish", "LOGISTIC": "AddLogistic", "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean", "MUL": "AddMul", "PAD": "AddPad", "QUANTIZE": "AddQuantize",
    "RELU": "AddRelu", "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "SHAPE": "AddShape",
    "SOFTMAX": "AddSoftmax", "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub",
    "SUM": "AddSum", "TANH": "AddTanh", "TRANSPOSE": "AddTranspose", "PACK": "AddPack",
    "SQUEEZE": "AddSqueeze", "LEAKY_RELU": "AddLeakyRelu", "PRELU": "AddPrelu",
}


def model_ops(buf: bytes) -> list[str]:
    """The builtin ops a .tflite uses, in its operator-code order."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(buf, 0)
    ops = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        ops.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    return ops


def check_ops(ops: list[str], name: str) -> None:
    missing = [op for op in ops if op not in MICRO_OPS]
    if missing:
        raise FerEdgeError(f"{name} uses {', '.join(missing)}, which TFLite Micro has no kernel "
                           f"for: it cannot run on a microcontroller")


def micro_runtime():
    """TFLite Micro's Python runtime (the tflite-micro package, the `micro` extra)."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise FerEdgeError("the TFLite Micro interpreter is not installed: "
                           "pip install 'fer-edge[micro]'") from None
    return runtime


def micro_interpreter(buf: bytes, arena_size: int):
    """TFLite Micro's interpreter on the model bytes."""
    return micro_runtime().Interpreter.from_bytes(buf, arena_size=arena_size)


def source_paths(tflite_path: Path) -> tuple[Path, Path]:
    """NAME_model.h and NAME_model.cc beside NAME.tflite."""
    return (tflite_path.with_name(f"{tflite_path.stem}_model.h"),
            tflite_path.with_name(f"{tflite_path.stem}_model.cc"))


def _runs_with(buf: bytes, arena: int) -> bool:
    import numpy as np

    from fer_edge.edge.sources import quiet_native_stderr

    with quiet_native_stderr():      # TFLM prints every failed allocation
        try:
            it = micro_interpreter(buf, arena)
            it.set_input(np.zeros(it.get_input_details(0)["shape"], np.int8), 0)
            it.invoke()
        except RuntimeError:
            return False
    return True


def measure_arena(buf: bytes) -> int:
    """The smallest tensor arena (bytes, multiple of 16) that allocates and runs the model."""
    hi = max(64 * 1024, len(buf))
    while not _runs_with(buf, hi):
        hi *= 2
        if hi > 64 * 1024 * 1024:
            raise FerEdgeError("TFLite Micro cannot allocate this model even with a 64 MB arena")
    lo = 16
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        lo, hi = (lo, mid) if _runs_with(buf, mid) else (mid, hi)
    return hi


def _c_name(stem: str) -> str:
    return re.sub(r"\W", "_", stem)


def write_sources(tflite_path: Path, force: bool = False) -> tuple[Path, Path, dict]:
    """NAME_model.h and NAME_model.cc beside NAME.tflite; returns their paths and the facts
    written into them (ops, sizes)."""
    from fer_edge.edge.fileio import check_writable, write_text

    buf = tflite_path.read_bytes()
    name = _c_name(tflite_path.stem)
    header, source = (check_writable(p, force) for p in source_paths(tflite_path))
    ops = model_ops(buf)
    check_ops(ops, tflite_path.name)
    record = tflite_meta.read(buf) or {}
    tensors = record.get("tensors", {})
    arena_min = measure_arena(buf)
    arena = -(-int(arena_min * (1 + ARENA_MARGIN)) // ARENA_ALIGN) * ARENA_ALIGN
    facts = {"model_bytes": len(buf), "arena_min_bytes": arena_min, "arena_bytes": arena,
             "ops": ops}
    write_text(header, _header(name, record, tensors, ops, facts))
    write_text(source, _source(name, buf, record))
    return header, source, facts


def _header(name: str, record: dict, tensors: dict, ops: list[str], facts: dict) -> str:
    guard = f"FER_EDGE_{name.upper()}_MODEL_H_"
    inp, out = tensors.get("input", {}), tensors.get("output", {})
    labels = record.get("labels", [])
    adds = "\n".join(f"  if (resolver.{MICRO_OPS[op]}() != kTfLiteOk) return kTfLiteError;"
                     for op in ops)
    return f"""// Generated by `fer-edge export --target micro`: do not edit.
// {name}: {record.get('arch', '?')} ({record.get('quantize', '?')}), {facts['model_bytes']} bytes.
// Input: {record.get('input_size', [48, 48])} grayscale face, int8 = grey level - 128
// (scale {inp.get('scale')}, zero point {inp.get('zero_point')}).
// Output: {len(labels)} int8 scores; probability = (q - zero point) * scale.
#ifndef {guard}
#define {guard}

#include <cstddef>

extern const unsigned char {name}_model[];
extern const unsigned int {name}_model_len;

constexpr int {name}_num_labels = {len(labels)};
extern const char* const {name}_labels[{len(labels)}];

constexpr float {name}_input_scale = {float(inp.get('scale', 0.0))!r}f;
constexpr int {name}_input_zero_point = {int(inp.get('zero_point', 0))};
constexpr float {name}_output_scale = {float(out.get('scale', 0.0))!r}f;
constexpr int {name}_output_zero_point = {int(out.get('zero_point', 0))};

// Tensor arena: {facts['arena_min_bytes']} bytes measured on TFLite Micro's interpreter,
// plus {ARENA_MARGIN:.0%}, rounded up to KiB.
constexpr size_t {name}_tensor_arena_size = {facts['arena_bytes']};

// The ops the model uses: {', '.join(ops)}.
constexpr int {name}_num_ops = {len(ops)};
#if defined(__has_include)
#if __has_include("tensorflow/lite/micro/micro_mutable_op_resolver.h")
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
template <unsigned int N>
inline TfLiteStatus {name}_register_ops(tflite::MicroMutableOpResolver<N>& resolver) {{
{adds}
  return kTfLiteOk;
}}
#endif
#endif

#endif  // {guard}
"""


def _source(name: str, buf: bytes, record: dict) -> str:
    rows = [", ".join(f"0x{b:02x}" for b in buf[i:i + BYTES_PER_LINE])
            for i in range(0, len(buf), BYTES_PER_LINE)]
    labels = ", ".join(f'"{lab}"' for lab in record.get("labels", []))
    body = ",\n    ".join(rows)
    return f"""// Generated by `fer-edge export --target micro`: do not edit.
#include "{name}_model.h"

// 16-byte aligned: TFLite Micro reads tensors in place from this array.
alignas(16) const unsigned char {name}_model[] = {{
    {body}
}};
const unsigned int {name}_model_len = {len(buf)};

const char* const {name}_labels[{len(record.get('labels', []))}] = {{{labels}}};
"""
