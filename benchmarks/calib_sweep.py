"""Int8 calibration-size sweep: export the model's int8 variant with N stratified Training images
(seed 0) for each N, evaluate each on a split (FER2013 labels, and the FER+ majority where the
votes are beside the data), print JSON. Never --split test for a choice.

    python benchmarks/calib_sweep.py --model runs/edge_vgg/best.keras --data ../shared/fer2013 \
        --sizes 50,100,250,500,1000,2000 --split test
"""

import json
import sys
import tempfile
from pathlib import Path

import fire


def sweep(model: str, data: str, sizes="50,100,250,500,1000,2000", split: str = "test",
          seed: int = 0):
    from fer_edge.evaluate import evaluate
    from fer_edge.export import calibration_images
    from fer_edge.converters.tflite import convert
    from fer_edge.training.keras_io import load_keras

    sizes = [int(s) for s in (sizes.split(",") if isinstance(sizes, str) else sizes)]
    keras_model = load_keras(model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            images, extra = calibration_images(data, n, seed=seed)
            path = Path(tmp) / f"int8_{n}.tflite"
            path.write_bytes(convert(keras_model, "int8", images, extra))
            r = evaluate([path], data=data, split=split, latency_runs=50)["variants"][0]
            rows.append({"calib_size": n, "top1": r["top1"], "macro_f1": r["macro_f1"],
                         "ferplus_top1": r.get("ferplus", {}).get("top1")})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    ref = evaluate([model], data=data, split=split, latency_runs=10)["variants"][0]
    print(json.dumps({"model": model, "split": split, "seed": seed, "keras_top1": ref["top1"],
                      "keras_ferplus_top1": ref.get("ferplus", {}).get("top1"), "int8": rows},
                     indent=1))


if __name__ == "__main__":
    fire.Fire(sweep)
