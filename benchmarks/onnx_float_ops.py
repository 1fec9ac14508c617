"""Which op's int8 rounding makes a model's int8 .onnx answer differently from its int8 .tflite:
quantize the float ONNX export as `export --target onnx` does (`onnx_export.quantize_int8`, the
committed calibration faces), once per op type left in float (`none`: the export's own file),
and print each file's agreement with the .tflite's answers on a split (val: this is for finding
a defect).

    python benchmarks/onnx_float_ops.py --model models/ferplus.keras --tflite models/ferplus_int8.tflite \
        --data ../shared/fer2013 --float-ops none,LeakyRelu,GlobalAveragePool
"""

import json

import fire
import numpy as np


def agreement(model: str, tflite: str, data: str, float_ops="none,LeakyRelu",
              split: str = "val"):
    import onnxruntime as ort

    from fer_edge import data as fdata
    from fer_edge.converters import onnx_export
    from fer_edge.edge.preprocessing import batch_to_float
    from fer_edge.evaluate import load_variant
    from fer_edge.export import calibration_images
    from fer_edge.training.keras_io import load_keras

    faces = fdata.load(data).split(split)
    reference = load_variant(tflite).predict(faces.x).argmax(1)
    x = batch_to_float(faces.x)
    calib = calibration_images(data)[0]
    proto = onnx_export.float_model(load_keras(model))
    result = {"model": model, "tflite": tflite, "split": split, "agreement": {}}
    for left in (float_ops.split(",") if isinstance(float_ops, str) else float_ops):
        quantized = onnx_export.quantize_int8(proto, calib,
                                              float_ops=() if left == "none" else (left,))
        session = ort.InferenceSession(quantized.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        answers = np.concatenate([session.run(None, {name: x[i:i + 256]})[0]
                                  for i in range(0, len(x), 256)]).argmax(1)
        result["agreement"][left] = round(float((answers == reference).mean()), 4)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    fire.Fire(agreement)
