"""Starting a narrower model from a wider trained one (network slimming): each convolution keeps
the output channels whose BatchNormalization scale |gamma| is largest, and the layers after it
keep the matching input channels. The narrow model starts close to what the wide one computes,
so a short (distilled) fine-tune recovers most of its accuracy instead of training from scratch.

The two models must have the same layers in the same order (Conv2D, BatchNormalization, Dense,
...), each at most as wide in the narrow one: e.g. `edge_fast` -> `edge_fast_slim`."""

from __future__ import annotations

import numpy as np

from ..errors import FerEdgeError

_WEIGHTED = ("Conv2D", "BatchNormalization", "Dense")


def _weighted_layers(model) -> list:
    return [l for l in model.layers if type(l).__name__ in _WEIGHTED]


def kept_channels(gamma: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` channels with the largest |gamma|, in their original order."""
    return np.sort(np.argsort(-np.abs(gamma), kind="stable")[:n])


def slim_into(wide, narrow) -> None:
    """Set `narrow`'s weights from `wide`'s, keeping the strongest channels of every conv.
    Raises FerEdgeError when the layer structures differ or `narrow` is wider anywhere."""
    src, dst = _weighted_layers(wide), _weighted_layers(narrow)
    _check_narrower(wide, narrow, src, dst)
    channels_in = None  # channels of the current feature map kept so far (None: all)
    for i, (s, d) in enumerate(zip(src, dst)):
        weights = [np.asarray(w) for w in s.get_weights()]
        kind = type(s).__name__
        if kind == "Conv2D":
            kernel = weights[0] if channels_in is None else weights[0][:, :, channels_in, :]
            # The following BatchNormalization's scale ranks the channels (slimming's criterion).
            follows = src[i + 1] if i + 1 < len(src) else None
            rank = (np.asarray(follows.gamma) if type(follows).__name__ == "BatchNormalization"
                    else np.abs(kernel).sum((0, 1, 2)))
            channels_in = kept_channels(rank, d.get_weights()[0].shape[-1])
            d.set_weights([kernel[..., channels_in]] + [w[channels_in] for w in weights[1:]])
        elif kind == "BatchNormalization":
            d.set_weights([w[channels_in] for w in weights])
        else:  # Dense after global pooling: its inputs are the last conv's channels
            kernel = weights[0] if channels_in is None else weights[0][channels_in]
            d.set_weights([kernel] + weights[1:])
            channels_in = None


def _check_narrower(wide, narrow, src: list, dst: list) -> None:
    kinds = lambda layers: [type(l).__name__ for l in layers]  # noqa: E731
    if kinds(src) != kinds(dst):
        raise FerEdgeError(f"'{wide.name}' and '{narrow.name}' differ in their layers; slimming "
                           f"needs the same layers, narrower")
    for s, d in zip(src, dst):
        a, b = s.get_weights()[0].shape, d.get_weights()[0].shape
        same_kernel = type(d).__name__ != "Conv2D" or a[:2] == b[:2]
        if len(a) != len(b) or not same_kernel or any(x < y for x, y in zip(a, b)):
            raise FerEdgeError(f"'{narrow.name}' is not narrower than '{wide.name}' at layer "
                               f"{d.name} ({tuple(b)} against {tuple(a)})")
        if type(d).__name__ == "Dense" and a[-1] != b[-1]:
            raise FerEdgeError(f"'{narrow.name}' has {b[-1]} outputs where '{wide.name}' has "
                               f"{a[-1]}")
