"""benchmarks/akhtar_peer.py, which the README's second peer row rests on: its reader of
torch.save's legacy format gives back the arrays written, and its Keras rebuild of the peer's
network computes what the PyTorch module computes (reflection padding, NCHW flattening), checked
here against a plain numpy forward pass of that module on random weights; and
benchmarks/vicksam_peer.py, which loads a Keras 2 .h5 into its rebuilt network by topology and
reorders FER+'s outputs into fer-edge's labels."""

import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import akhtar_peer  # noqa: E402


class _Tensor:
    """What the writer pickles for a tensor: a rebuild call whose storage is a persistent id."""

    def __init__(self, a: np.ndarray):
        self.a = a


class _StorageRef:
    def __init__(self, a: np.ndarray):
        self.a = a


def _legacy_save(obj: dict, path: Path) -> None:
    """Write `obj` (values: arrays, dicts of arrays, plain values) as torch.save's pre-1.6
    layout does: magic, protocol, system info, the object with its storages as persistent ids,
    the storage keys, then each storage's element count and bytes."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    storage_names = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}
    for name in storage_names.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("pickled by reference, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storages: list[np.ndarray] = []

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if not isinstance(o, _StorageRef):
                return None
            storages.append(o.a)
            return ("storage", getattr(torch, storage_names[o.a.dtype]), str(len(storages) - 1),
                    "cpu", o.a.size, None)

        def reducer_override(self, o):
            if not isinstance(o, _Tensor):
                return NotImplemented
            # the storage holds the array's memory in C order; a view gives its own strides
            base = np.ascontiguousarray(o.a.T).T if not o.a.flags.c_contiguous else o.a
            flat = base.ravel(order="K")           # memory order
            strides = tuple(s // base.itemsize for s in base.strides)
            return (_rebuild_tensor_v2, (_StorageRef(flat), 0, base.shape, strides, False,
                                         OrderedDict()))

    def wrap(v):
        if isinstance(v, dict):
            return OrderedDict((k, wrap(x)) for k, x in v.items())
        return _Tensor(v) if isinstance(v, np.ndarray) else v

    old = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        with open(path, "wb") as f:
            for head in (0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}):
                pickle.dump(head, f, protocol=2)
            Pickler(f, protocol=2).dump(wrap(obj))
            pickle.dump([str(i) for i in range(len(storages))], f, protocol=2)
            for a in storages:
                f.write(np.int64(a.size).tobytes())
                f.write(a.astype(a.dtype.newbyteorder("<")).tobytes())
    finally:
        for k, v in old.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _random_state(rng) -> dict:
    state, channels = OrderedDict(), [1, 32, 64, 128, 256]
    for i in range(4):
        c_in, c_out = channels[i], channels[i + 1]
        b = f"conv_{i + 1}"
        state[f"{b}.1.weight"] = rng.normal(0, (2 / (9 * c_in)) ** 0.5,
                                            (c_out, c_in, 3, 3)).astype(np.float32)
        state[f"{b}.1.bias"] = rng.normal(0, 0.1, c_out).astype(np.float32)
        state[f"{b}.2.weight"] = rng.uniform(0.5, 1.5, c_out).astype(np.float32)
        state[f"{b}.2.bias"] = rng.normal(0, 0.1, c_out).astype(np.float32)
        state[f"{b}.2.running_mean"] = rng.normal(0, 0.1, c_out).astype(np.float32)
        state[f"{b}.2.running_var"] = rng.uniform(0.5, 1.5, c_out).astype(np.float32)
        state[f"{b}.2.num_batches_tracked"] = np.array(7, np.int64)
    state["linear.0.weight"] = rng.normal(0, 0.01, (256, 256 * 6 * 6)).astype(np.float32)
    state["linear.0.bias"] = rng.normal(0, 0.1, 256).astype(np.float32)
    state["linear.2.weight"] = rng.normal(0, 0.1, (7, 256)).astype(np.float32)
    state["linear.2.bias"] = rng.normal(0, 0.1, 7).astype(np.float32)
    return state


def _numpy_forward(state: dict, faces_u8: np.ndarray) -> np.ndarray:
    """The peer's NetworkV2 as PyTorch runs it, in numpy: NCHW, reflection pad 1, 3x3 conv,
    batch norm (eval), ReLU, four times; flatten (C, H, W); dense-ReLU-dense-sigmoid."""
    x = faces_u8[:, None].astype(np.float64) / 255.0
    x = (x - 0.5) / 0.5
    for i, stride in enumerate((1, 2, 2, 2)):
        b = f"conv_{i + 1}"
        w, bias = state[f"{b}.1.weight"], state[f"{b}.1.bias"]
        x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
        h = (x.shape[2] - 3) // stride + 1
        out = np.zeros((x.shape[0], w.shape[0], h, h))
        for dy in range(3):
            for dx in range(3):
                patch = x[:, :, dy:dy + stride * h:stride, dx:dx + stride * h:stride]
                out += np.einsum("nchw,oc->nohw", patch, w[:, :, dy, dx])
        out += bias[None, :, None, None]
        g, beta = state[f"{b}.2.weight"], state[f"{b}.2.bias"]
        mean, var = state[f"{b}.2.running_mean"], state[f"{b}.2.running_var"]
        out = (out - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
        x = np.maximum(out * g[None, :, None, None] + beta[None, :, None, None], 0)
    x = x.reshape(len(x), -1)
    x = np.maximum(x @ state["linear.0.weight"].T + state["linear.0.bias"], 0)
    return 1 / (1 + np.exp(-(x @ state["linear.2.weight"].T + state["linear.2.bias"])))


def test_the_legacy_reader_gives_back_the_arrays_written(tmp_path):
    rng = np.random.default_rng(0)
    state = _random_state(rng)
    transposed = rng.normal(size=(4, 6)).astype(np.float32)
    path = tmp_path / "model.pkl"
    _legacy_save({"network": state, "accuracy": 0.5, "epochs": 3,
                  "other": {"t": transposed.T}}, path)
    read = akhtar_peer.read_legacy(path)
    assert read["accuracy"] == 0.5 and read["epochs"] == 3
    assert list(read["network"]) == list(state)
    for k, a in state.items():
        assert read["network"][k].dtype == a.dtype and np.array_equal(read["network"][k], a), k
    assert np.array_equal(read["other"]["t"], transposed.T)     # strides honoured


def test_the_keras_rebuild_computes_what_the_pytorch_module_does():
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    state = _random_state(rng)
    faces = rng.integers(0, 256, (5, 48, 48)).astype(np.uint8)
    model = akhtar_peer.keras_model(state)
    ours = model.predict(faces[..., None].astype(np.float32), verbose=0)
    expected = _numpy_forward(state, faces)
    assert np.abs(ours - expected).max() < 1e-4
    assert (ours.argmax(1) == expected.argmax(1)).all()
    # the (C, H, W) flattening matters: without the reorder the answers differ
    assert np.abs(expected - _numpy_forward(
        {**state, "linear.0.weight": state["linear.0.weight"][:, ::-1].copy()}, faces)).max() > 1e-3


def _write_keras2_h5(path: Path, arrays: list[list[np.ndarray]], kinds: list[str]) -> None:
    """An .h5 in Keras 2's layout (model_config + model_weights/<layer>/<layer>/<w>:0), as the
    vicksam/fer-model repository stores its models, with the given weights per layer."""
    import json

    import h5py

    names = {"SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
             "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance")}
    layers = [{"class_name": "InputLayer", "config": {"name": "in"}}]
    with h5py.File(path, "w") as f:
        group = f.create_group("model_weights")
        for i, (kind, ws) in enumerate(zip(kinds, arrays)):
            name = f"layer_{i}"
            layers.append({"class_name": kind, "config": {"name": name}})
            inner = group.create_group(name).create_group(name)
            for wname, w in zip(names[kind], ws):
                inner.create_dataset(f"{wname}:0", data=w)
            if kind == "BatchNormalization":   # a weightless layer between, as in the file
                layers.append({"class_name": "LeakyReLU", "config": {"name": f"act_{i}"}})
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"layers": layers}})


def test_vicksam_rebuild_loads_keras2_weights_by_topology(tmp_path):
    import vicksam_peer

    from fer_edge.edge.preprocessing import LABELS8

    rng = np.random.default_rng(0)
    # weights of the right shapes, drawn at random, written in Keras 2's layout
    import keras

    from keras import layers

    x_in = keras.Input((48, 48, 1))
    x = x_in
    for width in vicksam_peer.WIDTHS:
        x = layers.SeparableConv2D(width, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
    x = layers.SeparableConv2D(8, 1, padding="same")(x)
    probe = keras.Model(x_in, x)
    kinds, arrays = [], []
    for layer in probe.layers:
        if not layer.weights:
            continue
        kinds.append(type(layer).__name__)
        ws = [rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()]
        if kinds[-1] == "BatchNormalization":
            ws[3] = np.abs(ws[3]) + 0.5                     # a variance
        arrays.append(ws)
    _write_keras2_h5(tmp_path / "m.h5", arrays, kinds)
    model = vicksam_peer.keras_model(tmp_path / "m.h5")
    loaded = [layer.get_weights() for layer in model.layers if layer.weights]
    assert len(loaded) == len(arrays) == 19          # 10 separable convolutions, 9 BatchNorms
    for mine, theirs in zip(loaded, arrays):
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a, b)
    # the edge wrapper takes grey levels and answers in LABELS8 order
    faces = rng.uniform(0, 255, (4, 48, 48, 1)).astype(np.float32)
    raw = np.asarray(model(faces / 255.0))
    edge = np.asarray(vicksam_peer.edge_model(tmp_path / "m.h5",
                                              vicksam_peer.FERPLUS_ORDER)(faces))
    for k, lab in enumerate(LABELS8):
        np.testing.assert_allclose(edge[:, k], raw[:, vicksam_peer.FERPLUS_ORDER.index(lab)],
                                   rtol=1e-5, atol=1e-6)
