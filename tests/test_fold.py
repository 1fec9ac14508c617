"""converters/fold.py: a BatchNormalization after a ReLU folds away without changing outputs."""

import numpy as np

from converters.fold import fold_batchnorm_after_relu
from fer_edge.training import archs


def with_random_statistics(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n),
                               rng.normal(0, 0.2, n), rng.uniform(0.001, 0.05, n)])
    return model


def kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_seed_cnn_folds_both_batchnorms_and_computes_the_same():
    model = with_random_statistics(archs.build("seed"))
    folded = fold_batchnorm_after_relu(model)
    assert "BatchNormalization" in kinds(model) and "BatchNormalization" not in kinds(folded)
    assert len(folded.layers) == len(model.layers) - 2 and folded.name == "seed"
    x = np.random.default_rng(1).uniform(0, 255, (16, 48, 48, 1)).astype(np.float32)
    p, q = model.predict(x, verbose=0), folded.predict(x, verbose=0)
    np.testing.assert_allclose(p, q, atol=1e-5)


def test_negative_scale_is_left_in_place():
    model = with_random_statistics(archs.build("seed"))
    bn = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"][0]
    gamma, beta, mean, var = bn.get_weights()
    gamma[3] = -1.0   # relu(z) * a != relu(a * z) for a < 0
    bn.set_weights([gamma, beta, mean, var])
    assert kinds(fold_batchnorm_after_relu(model)).count("BatchNormalization") == 1


def test_models_without_the_pattern_are_returned_unchanged():
    for name in ("edge_fast", "tiny"):   # Conv -> BN -> ReLU: the converter folds those itself
        model = archs.build(name)
        assert fold_batchnorm_after_relu(model) is model
