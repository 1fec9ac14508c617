"""Where a model's full-integer int8 error comes from, layer by layer (TFLite's QuantizationDebugger):
for every quantized tensor, the RMS difference between the int8 graph and the float graph on the
same inputs, in units of that tensor's quantization step. Uniform rounding alone gives
1/sqrt(12) = 0.29 steps; a layer well above that is a defect (a range wasted on outliers, an
unfolded BatchNorm), a chain at 0.29 is simply 8 bits of noise. JSON out.

    python benchmarks/int8_layers.py --model models/fer.keras --data ../shared/fer2013 \
        --split val --n 500 --out reports/int8_layers/default.json
"""

import io
import json
import sys
from pathlib import Path

import fire
import numpy as np

ROUNDING_FLOOR = 1 / np.sqrt(12)


def layers(model: str, data: str, split: str = "val", n: int = 500, seed: int = 0,
           out: str = None):
    import pandas as pd
    import tensorflow as tf

    from fer_edge import data as fdata
    from fer_edge.converters.tflite import calibrate_full_integer, saved_model_converter
    from fer_edge.edge.preprocessing import batch_to_float
    from fer_edge.export import calibration_images
    from fer_edge.training.keras_io import load_keras

    faces = fdata.load(data).split(split)
    pick = np.random.default_rng(seed).choice(len(faces), min(n, len(faces)), replace=False)
    x = batch_to_float(faces.x[np.sort(pick)])
    # converted as `export` converts it, calibrated on what `export` calibrates on; float input
    # and output, which the debugger compares layer by layer
    with saved_model_converter(load_keras(model)) as conv:
        calibrate_full_integer(conv, calibration_images(data)[0])
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=lambda: ([x[i:i + 1]] for i in range(len(x))))
        debugger.run()
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    text.seek(0)
    stats = pd.read_csv(text)
    rows = [{"op": r.op_name, "tensor": r.tensor_name.split(";")[0],
             "range": round(float(255 * r.scale), 5),
             "rms_error_in_steps": round(float(np.sqrt(r.mean_squared_error) / r.scale), 3),
             "max_abs_error_in_steps": round(float(r.max_abs_error / r.scale), 3)}
            for r in stats.itertuples() if r.op_name != "MAX_POOL_2D"]   # max pool is exact
    for r in rows:
        print(f"{r['op']:16s} rms {r['rms_error_in_steps']:.3f} steps, max "
              f"{r['max_abs_error_in_steps']:.2f}, range {r['range']:.3f}  {r['tensor']}",
              file=sys.stderr)
    result = {"model": model, "split": split, "n": int(len(x)), "seed": seed,
              "rounding_floor_steps": round(float(ROUNDING_FLOOR), 3), "layers": rows,
              "command": "python " + " ".join(sys.argv)}
    text = json.dumps(result, indent=1)
    if out:
        from fer_edge.edge.fileio import write_text

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_text(Path(out), text + "\n")
    print(text)


if __name__ == "__main__":
    fire.Fire(layers)
