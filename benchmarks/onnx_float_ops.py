"""Which op's int8 rounding makes a model's int8 .onnx answer differently from its int8 .tflite:
quantize the float ONNX export as `export --target onnx` does (onnxruntime quantize_static, QDQ,
the committed calibration faces), once per op type left in float, and print each file's
agreement with the .tflite's answers on a split (val: this is for finding a defect).

    python benchmarks/onnx_float_ops.py --model models/ferplus.keras --tflite models/ferplus_int8.tflite \
        --data ../shared/fer2013 --float-ops none,LeakyRelu,GlobalAveragePool
"""

import json
import tempfile
from pathlib import Path

import fire
import numpy as np


def agreement(model: str, tflite: str, data: str, float_ops="none,LeakyRelu",
              split: str = "val"):
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fer_edge import data as fdata
    from fer_edge.converters import onnx_export
    from fer_edge.edge.preprocessing import batch_to_float
    from fer_edge.evaluate import load_variant
    from fer_edge.export import calibration_images
    from fer_edge.training.keras_io import load_keras

    faces = fdata.load(data).split(split)
    reference = load_variant(tflite).predict(faces.x).argmax(1)
    x = batch_to_float(faces.x)
    calib = batch_to_float(calibration_images(data)[0])
    result = {"model": model, "tflite": tflite, "split": split, "agreement": {}}
    with tempfile.TemporaryDirectory() as tmp:
        plain, pre = Path(tmp) / "float.onnx", Path(tmp) / "pre.onnx"
        onnx.save(onnx_export.float_model(load_keras(model)), plain)
        quant_pre_process(str(plain), str(pre), skip_symbolic_shape=True)
        ops = sorted({n.op_type for n in onnx.load(pre).graph.node})
        for left in (float_ops.split(",") if isinstance(float_ops, str) else float_ops):
            out = Path(tmp) / f"int8_{left}.onnx"
            quantize_static(str(pre), str(out), onnx_export._Faces(calib),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax,
                            op_types_to_quantize=[o for o in ops if o != left])
            session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            answers = np.concatenate([session.run(None, {name: x[i:i + 256]})[0]
                                      for i in range(0, len(x), 256)]).argmax(1)
            result["agreement"][left] = round(float((answers == reference).mean()), 4)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    fire.Fire(agreement)
