import keras
import pytest

from fer_edge.training import archs
from fer_edge.errors import FerEdgeError


def _body(model):
    # Skip the shared input + in-model rescaling that every architecture gets.
    return [l for l in model.layers if not isinstance(l, (keras.layers.InputLayer, keras.layers.Rescaling))]


def test_seed_matches_the_seed_document_layer_by_layer():
    m = archs.build("seed")
    spec = [
        ("Conv2D", dict(filters=32, kernel_size=(3, 3), activation="relu")),
        ("Conv2D", dict(filters=64, kernel_size=(3, 3), activation="relu")),
        ("BatchNormalization", {}),
        ("MaxPooling2D", dict(pool_size=(2, 2))),
        ("Dropout", dict(rate=0.25)),
        ("Conv2D", dict(filters=128, kernel_size=(3, 3), activation="relu", l2=0.01)),
        ("Conv2D", dict(filters=256, kernel_size=(3, 3), activation="relu")),
        ("BatchNormalization", {}),
        ("MaxPooling2D", dict(pool_size=(2, 2))),
        ("Dropout", dict(rate=0.25)),
        ("Flatten", {}),
        ("Dense", dict(units=1024, activation="relu")),
        ("Dropout", dict(rate=0.5)),
        ("Dense", dict(units=7, activation="softmax")),
    ]
    layers = _body(m)
    assert [type(l).__name__ for l in layers] == [t for t, _ in spec]
    for layer, (_, want) in zip(layers, spec):
        cfg = layer.get_config()
        for key, value in want.items():
            if key == "l2":
                assert cfg["kernel_regularizer"]["config"]["l2"] == pytest.approx(value)
            elif key == "activation":
                assert cfg["activation"] == value
            else:
                assert tuple(cfg[key]) == value if isinstance(value, tuple) else cfg[key] == value
        if type(layer).__name__ == "Conv2D" and "l2" not in want:
            assert cfg["kernel_regularizer"] is None
    assert m.input_shape == (None, 48, 48, 1)
    assert m.count_params() == 21_630_983  # "21.6 M parameters" for 48x48x1
    assert round(m.count_params() / 1e6, 1) == 21.6


def test_seed_recipe_is_the_seed_documents():
    r = archs.get("seed").recipe
    assert (r["epochs"], r["batch_size"], r["learning_rate"], r["decay"]) == (60, 64, 1e-4, 1e-6)
    assert r["augment"] == "seed"


@pytest.mark.parametrize("name", ["edge_vgg", "edge_vgg_s", "edge_fast", "edge_fast_slim",
                                  "edge_fast_slim8"])
def test_edge_architectures_fit_the_int8_size_budget(name):
    m = archs.build(name)
    assert m.count_params() < 400_000  # int8 file <= 400 KB
    assert m.output_shape == (None, 7)
    # Conv -> BN -> ReLU with bias-free convs, so BN folds at export.
    convs = [l for l in m.layers if isinstance(l, keras.layers.Conv2D)]
    assert convs and all(not c.use_bias for c in convs)


def test_unknown_arch():
    with pytest.raises(FerEdgeError, match="unknown architecture 'nope'"):
        archs.get("nope")


def test_recipes_are_checked_by_the_option_table_when_registered():
    from fer_edge.errors import FerEdgeError
    from fer_edge.training import archs

    with pytest.raises(FerEdgeError, match="architecture 'x': learnig_rate is not a training "
                                           "option"):
        archs.register("x", "a misspelt recipe", learnig_rate=1e-3)
    with pytest.raises(FerEdgeError, match="architecture 'x': its recipe's --augment must be "
                                           "one of none, seed, edge, strong, not 'strongest'"):
        archs.register("x", "a recipe value out of its choices", augment="strongest")
    assert "x" not in archs.names()


def _int8_ops(model) -> list[str]:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from fer_edge.converters.tflite import convert

    calib = np.random.default_rng(0).integers(0, 256, (16, 48, 48), np.uint8)
    interpreter = Interpreter(model_content=convert(model, "int8", calib_images=calib))
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def test_conv_ferplus_relu_is_conv_ferplus_with_its_activations_fused_at_export():
    """The ReLU twin takes conv_ferplus's weights as they are, and its int8 file has no
    activation op left: each ReLU is fused into its convolution (one rounding a layer), where
    each LeakyReLU stays an op of its own (reports/onnx/README.md: why that matters)."""
    leaky, relu = archs.build("conv_ferplus", 8), archs.build("conv_ferplus_relu", 8)
    assert [w.shape for w in relu.get_weights()] == [w.shape for w in leaky.get_weights()]
    assert relu.output_shape == (None, 8)
    relu.set_weights(leaky.get_weights())
    assert "LEAKY_RELU" in _int8_ops(leaky)
    assert _int8_ops(relu) == ["CONV_2D", "MAX_POOL_2D", "MEAN", "SOFTMAX"]
