#!/usr/bin/env python3
"""Generate golden loss values, loss gradients and metric results with real TensorFlow + tf_keras.

Losses: for every case (a loss class with its options and one set of inputs), every reduction
(`sum_over_batch_size`, `sum`, `none`) and every weighting (none, and the case's sample weight), the
fixture holds the value `loss_obj(y_true, y_pred, sample_weight)` and the gradient of that value with
respect to `y_pred` (`tf.GradientTape`; for `none` the gradient of the sum of the elements, which is what
`tape.gradient` of a non-scalar target gives). It also holds the per-sample function's value
(`tf_keras.losses.binary_crossentropy(y_true, y_pred, ...)`) and `tf_keras.losses.serialize` of the loss
object for each reduction.

Metrics: each case feeds a few batches to a fresh metric (`update_state`), records `result()` after each,
then `reset_state()` and one more batch.

Output: Tests/Fixtures/losses/<case>.json, Tests/Fixtures/losses/INDEX.json,
        Tests/Fixtures/metrics/<case>.json, Tests/Fixtures/metrics/INDEX.json
(see scripts/golden/README.md for the format).

Usage:  /work/venv-tf/bin/python scripts/golden/generate_losses.py
"""

import glob
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, json_safe, write_json  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

L = tf_keras.losses
M = tf_keras.metrics

LOSS_DIR = os.path.join(FIXTURES, "losses")
METRIC_DIR = os.path.join(FIXTURES, "metrics")
REDUCTIONS = ["sum_over_batch_size", "sum", "none"]

F32_ONE_MINUS_EPS = float(np.float32(1.0) - np.float32(1e-7))  # 0.99999988079071044921875


def flat(a):
    """Row-major flattening to Python scalars (float32 -> Python float is exact)."""
    return np.asarray(a).reshape(-1).tolist()


def tensor_json(a):
    a = np.asarray(a)
    dtype = {np.dtype("float32"): "float32", np.dtype("float64"): "float64",
             np.dtype("int64"): "int64"}[a.dtype]
    return {"shape": list(a.shape), "dtype": dtype, "values": flat(a)}


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


# --------------------------------------------------------------------------
# Loss cases
# --------------------------------------------------------------------------

LOSS_CLASSES = {
    "MeanSquaredError": (L.MeanSquaredError, L.mean_squared_error),
    "MeanAbsoluteError": (L.MeanAbsoluteError, L.mean_absolute_error),
    "BinaryCrossentropy": (L.BinaryCrossentropy, L.binary_crossentropy),
    "CategoricalCrossentropy": (L.CategoricalCrossentropy, L.categorical_crossentropy),
    "SparseCategoricalCrossentropy": (L.SparseCategoricalCrossentropy, L.sparse_categorical_crossentropy),
}

LOSS_CASES = []


def loss_case(name, description, class_name, options, make_inputs):
    assert name not in {c[0] for c in LOSS_CASES}, name
    LOSS_CASES.append((name, description, class_name, options, make_inputs))


def probs_with_edges(rng, shape):
    """Probabilities in (0, 1) plus values that hit the [eps, 1 - eps] clip and its neighbours."""
    p = rng.uniform(0.02, 0.98, size=shape).astype(np.float32).reshape(-1)
    edges = [0.0, 1.0, 1e-8, 5e-8, 2e-7, 0.99999994, 0.9999998, F32_ONE_MINUS_EPS + 0.0]
    slots = rng.permutation(p.size)
    for i, e in enumerate(edges[: p.size // 2]):
        p[slots[i]] = e
    return p.reshape(shape).astype(np.float32)


def weights(rng, shape):
    w = rng.uniform(0.0, 2.0, size=shape).astype(np.float32).reshape(-1)
    w[1 % w.size] = 0.0  # a masked sample
    return w.reshape(shape)


def onehot(labels, depth):
    return np.eye(depth, dtype=np.float32)[labels]


# --- mean squared / absolute error ---

def _mse(rng):
    return (rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32),
            weights(rng, (4,)))


loss_case("mse", "MeanSquaredError, [4,3], weights [4]", "MeanSquaredError", {}, _mse)


def _mse_3d(rng):
    return (rng.normal(size=(2, 3, 4)).astype(np.float32), rng.normal(size=(2, 3, 4)).astype(np.float32),
            weights(rng, (2, 3)))


loss_case("mse_3d", "MeanSquaredError, [2,3,4] (per-sample loss [2,3]), weights [2,3]", "MeanSquaredError",
          {}, _mse_3d)


def _mse_squeeze(rng):
    return (rng.normal(size=(5,)).astype(np.float32), rng.normal(size=(5, 1)).astype(np.float32),
            np.float32(0.7))


loss_case("mse_squeeze", "MeanSquaredError, y_true [5], y_pred [5,1]: the class squeezes y_pred to [5] and "
          "the per-sample loss is a scalar (the function alone broadcasts to [5,5]); scalar weight",
          "MeanSquaredError", {}, _mse_squeeze)


def _mse_int_labels(rng):
    return (rng.integers(-2, 3, size=(3, 4)).astype(np.int64), rng.normal(size=(3, 4)).astype(np.float32),
            weights(rng, (3, 1)))


loss_case("mse_int64_labels", "MeanSquaredError, int64 y_true [3,4], weights [3,1]", "MeanSquaredError", {},
          _mse_int_labels)


def _mae(rng):
    yt = rng.normal(size=(4, 3)).astype(np.float32)
    yp = rng.normal(size=(4, 3)).astype(np.float32)
    yp[2, 1] = yt[2, 1]  # a zero difference: abs' gradient is sign(0) = 0
    return yt, yp, weights(rng, (4,))


loss_case("mae", "MeanAbsoluteError, [4,3] with one zero difference, weights [4]", "MeanAbsoluteError", {}, _mae)


def _mae_3d(rng):
    return (rng.normal(size=(2, 3, 2)).astype(np.float32), rng.normal(size=(2, 3, 2)).astype(np.float32),
            weights(rng, (2,)))


loss_case("mae_3d", "MeanAbsoluteError, [2,3,2], weights [2] (expanded to [2,1])", "MeanAbsoluteError", {},
          _mae_3d)


# --- binary crossentropy ---

def _bce_probs(rng):
    yt = rng.integers(0, 2, size=(4, 4)).astype(np.float32)
    yt[3, 3] = 0.25  # a soft label
    return yt, probs_with_edges(rng, (4, 4)), weights(rng, (4,))


loss_case("bce_probs", "BinaryCrossentropy on probabilities [4,4] including 0, 1 and values either side of "
          "the 1e-7 / 1-1e-7 clip", "BinaryCrossentropy", {"from_logits": False}, _bce_probs)
loss_case("bce_probs_smoothing", "BinaryCrossentropy on probabilities, label_smoothing 0.2",
          "BinaryCrossentropy", {"from_logits": False, "label_smoothing": 0.2}, _bce_probs)


def _bce_logits(rng):
    yt = rng.integers(0, 2, size=(4, 4)).astype(np.float32)
    yt[0, 2] = 0.7
    x = (rng.normal(size=(4, 4)) * 4).astype(np.float32)
    x[1, 1] = 0.0  # the where(x >= 0) branch point
    x[2, 0] = 30.0
    x[3, 2] = -30.0
    return yt, x, weights(rng, (4,))


loss_case("bce_logits", "BinaryCrossentropy from logits [4,4] including 0 and +-30", "BinaryCrossentropy",
          {"from_logits": True}, _bce_logits)
loss_case("bce_logits_smoothing", "BinaryCrossentropy from logits, label_smoothing 0.1", "BinaryCrossentropy",
          {"from_logits": True, "label_smoothing": 0.1}, _bce_logits)


def _bce_1d(rng):
    return (rng.integers(0, 2, size=(6,)).astype(np.float32), probs_with_edges(rng, (6,)), np.float32(1.5))


loss_case("bce_1d", "BinaryCrossentropy on probabilities of shape [6]: the mean over the last axis makes the "
          "per-sample loss a scalar; scalar weight", "BinaryCrossentropy", {}, _bce_1d)


def _bce_column(rng):
    return (rng.integers(0, 2, size=(5, 1)).astype(np.int64), (rng.normal(size=(5, 1)) * 2).astype(np.float32),
            weights(rng, (5,)))


loss_case("bce_logits_column", "BinaryCrossentropy from logits, int64 y_true [5,1], y_pred [5,1], weights [5]",
          "BinaryCrossentropy", {"from_logits": True}, _bce_column)


# --- categorical crossentropy ---

def _cce_probs(rng):
    labels = rng.integers(0, 4, size=(5,))
    yt = onehot(labels, 4)
    p = rng.uniform(0.05, 1.0, size=(5, 4)).astype(np.float32)  # not normalised: the loss normalises
    p[0] = [1.0, 0.0, 0.0, 0.0]
    p[1] = [0.3, 1e-9, 0.5, 0.2]
    p[2, labels[2]] = 0.0  # the true class has probability 0: clipped to eps
    yt[4] = [0.1, 0.2, 0.3, 0.4]  # a soft label
    return yt, p, weights(rng, (5,))


loss_case("cce_probs", "CategoricalCrossentropy on unnormalised probabilities [5,4] with zeros and a one-hot "
          "row, one soft label", "CategoricalCrossentropy", {"from_logits": False}, _cce_probs)
loss_case("cce_probs_smoothing", "CategoricalCrossentropy on probabilities, label_smoothing 0.1",
          "CategoricalCrossentropy", {"from_logits": False, "label_smoothing": 0.1}, _cce_probs)


def _cce_logits(rng):
    labels = rng.integers(0, 4, size=(5,))
    yt = onehot(labels, 4)
    yt[3] = [0.5, 0.5, 0.5, 0.0]  # labels that do not sum to 1: TF's fused gradient is softmax - labels
    x = (rng.normal(size=(5, 4)) * 3).astype(np.float32)
    x[4] = [40.0, -40.0, 0.0, 1.0]
    return yt, x, weights(rng, (5,))


loss_case("cce_logits", "CategoricalCrossentropy from logits [5,4], one label row summing to 1.5",
          "CategoricalCrossentropy", {"from_logits": True}, _cce_logits)
loss_case("cce_logits_smoothing", "CategoricalCrossentropy from logits, label_smoothing 0.2",
          "CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, _cce_logits)


def _cce_3d(rng):
    labels = rng.integers(0, 3, size=(2, 3))
    return onehot(labels, 3), (rng.normal(size=(2, 3, 3)) * 2).astype(np.float32), weights(rng, (2, 3))


loss_case("cce_logits_3d", "CategoricalCrossentropy from logits [2,3,3], weights [2,3]",
          "CategoricalCrossentropy", {"from_logits": True}, _cce_3d)


# --- sparse categorical crossentropy ---

def _scce_probs(rng):
    labels = rng.integers(0, 4, size=(5,)).astype(np.int64)
    p = rng.uniform(0.05, 1.0, size=(5, 4)).astype(np.float32)
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    p[0] = [1.0, 0.0, 0.0, 0.0]
    p[1, labels[1]] = 0.0
    p[2] = [0.25, 0.25, 0.25, 0.25]
    return labels, p, weights(rng, (5,))


loss_case("scce_probs", "SparseCategoricalCrossentropy on probabilities [5,4] with 0 and 1, int64 labels [5]",
          "SparseCategoricalCrossentropy", {"from_logits": False}, _scce_probs)


def _scce_probs_float(rng):
    labels, p, w = _scce_probs(rng)
    return labels.astype(np.float32), p, w


loss_case("scce_probs_float_labels", "SparseCategoricalCrossentropy on probabilities, float32 labels [5]",
          "SparseCategoricalCrossentropy", {"from_logits": False}, _scce_probs_float)


def _scce_logits(rng):
    labels = rng.integers(0, 4, size=(5, 1)).astype(np.int64)
    x = (rng.normal(size=(5, 4)) * 3).astype(np.float32)
    x[1] = [-50.0, 50.0, 0.0, 2.0]
    return labels, x, weights(rng, (5,))


loss_case("scce_logits", "SparseCategoricalCrossentropy from logits [5,4], int64 labels [5,1]",
          "SparseCategoricalCrossentropy", {"from_logits": True}, _scce_logits)


def _scce_logits_float(rng):
    labels, x, w = _scce_logits(rng)
    return labels.reshape(-1).astype(np.float32), x, w.reshape(5, 1)


loss_case("scce_logits_float_labels", "SparseCategoricalCrossentropy from logits, float32 labels [5], "
          "weights [5,1]", "SparseCategoricalCrossentropy", {"from_logits": True}, _scce_logits_float)


def _scce_3d(rng):
    labels = rng.integers(0, 4, size=(2, 3)).astype(np.int64)
    return labels, (rng.normal(size=(2, 3, 4)) * 2).astype(np.float32), weights(rng, (2, 3))


loss_case("scce_logits_3d", "SparseCategoricalCrossentropy from logits [2,3,4], labels [2,3], weights [2,3]",
          "SparseCategoricalCrossentropy", {"from_logits": True}, _scce_3d)


def _scce_3d_trailing(rng):
    labels, x, w = _scce_3d(rng)
    return labels.reshape(2, 3, 1), x, weights(rng, (2,))


loss_case("scce_logits_3d_trailing1", "SparseCategoricalCrossentropy from logits [2,3,4], labels [2,3,1] "
          "(flattened, result reshaped to [2,3]), weights [2]", "SparseCategoricalCrossentropy",
          {"from_logits": True}, _scce_3d_trailing)


def run_loss_case(name, description, class_name, options, make_inputs):
    cls, fn = LOSS_CLASSES[class_name]
    yt, yp, sw = make_inputs(rng_for(name))
    yt_tf, sw_tf = tf.constant(yt), tf.constant(sw)

    per_sample = fn(yt_tf, tf.constant(yp), **options)
    runs, configs = [], []
    for reduction in REDUCTIONS:
        loss_obj = cls(reduction=reduction, **options)
        configs.append(json_safe(L.serialize(loss_obj)))
        for weighted in (False, True):
            y_pred = tf.Variable(yp)
            with tf.GradientTape() as tape:
                value = loss_obj(yt_tf, y_pred, sample_weight=sw_tf if weighted else None)
            grad = tape.gradient(value, y_pred)
            assert value.dtype == tf.float32
            assert np.all(np.isfinite(value.numpy())) and np.all(np.isfinite(grad.numpy())), (name, reduction)
            runs.append({"reduction": reduction, "weighted": weighted, "shape": list(value.shape),
                         "value": flat(value.numpy()), "gradient": flat(grad.numpy())})
    return {
        "case": name,
        "description": description,
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "loss": {"class_name": class_name, "options": options},
        "function": fn.__name__,
        "y_true": tensor_json(yt),
        "y_pred": tensor_json(yp),
        "sample_weight": tensor_json(sw),
        "per_sample": {"shape": list(per_sample.shape), "values": flat(per_sample.numpy())},
        "runs": runs,
        "configs": configs,
    }


# --------------------------------------------------------------------------
# Metric cases
# --------------------------------------------------------------------------

METRIC_CASES = []


def metric_case(name, description, make_metric, batches):
    """`batches`: list of (y_true, y_pred, sample_weight or None); "reset" resets the metric.
    For `Mean`, y_true is None and y_pred holds the values."""
    METRIC_CASES.append((name, description, make_metric, batches))


def _batches_mean():
    r = rng_for("mean")
    return [
        (None, r.normal(size=(4,)).astype(np.float32), None),
        (None, r.normal(size=(4,)).astype(np.float32), r.uniform(0, 2, size=(4,)).astype(np.float32)),
        (None, r.normal(size=(2, 3)).astype(np.float32), np.array([0.5, 2.0], np.float32)),  # weights [2]->[2,1]
        "reset",
        (None, np.array([1, 3, 5, 7], np.float32), np.array([1, 1, 0, 0], np.float32)),
    ]


metric_case("mean", "Mean of values, with weights [4] and [2] against values [2,3]", lambda: M.Mean(),
            _batches_mean())


def _batches_accuracy():
    return [
        (np.array([[1], [2], [3], [4]], np.float32), np.array([[0], [2], [3], [4]], np.float32), None),
        (np.array([1, 2, 3, 4], np.int64), np.array([[1], [2], [0], [0]], np.float32),
         np.array([1, 1, 0, 0.5], np.float32)),
        "reset",
        (np.array([[1, 0], [0, 1]], np.float32), np.array([[1, 1], [0, 1]], np.float32), None),
    ]


metric_case("accuracy", "Accuracy (exact equality after casting to float32), int64 labels [4] against [4,1] "
            "predictions (squeezed)", lambda: M.Accuracy(), _batches_accuracy())


def _batches_binary(seed):
    r = rng_for(seed)
    p = r.uniform(0, 1, size=(6, 2)).astype(np.float32)
    p[0, 0] = 0.5  # not > 0.5
    p[1, 1] = 0.7
    return [
        (r.integers(0, 2, size=(6, 2)).astype(np.float32), p, None),
        (r.integers(0, 2, size=(6, 1)).astype(np.int64), r.uniform(0, 1, size=(6, 1)).astype(np.float32),
         r.uniform(0, 2, size=(6,)).astype(np.float32)),
        (r.integers(0, 2, size=(4,)).astype(np.float32), r.uniform(0, 1, size=(4, 1)).astype(np.float32), None),
        "reset",
        (np.array([1, 0, 1], np.float32), np.array([0.9, 0.2, 0.4], np.float32), None),
    ]


metric_case("binary_accuracy", "BinaryAccuracy(threshold=0.5), a prediction of exactly 0.5",
            lambda: M.BinaryAccuracy(), _batches_binary("binary_accuracy"))
metric_case("binary_accuracy_threshold", "BinaryAccuracy(threshold=0.7), a prediction of exactly 0.7",
            lambda: M.BinaryAccuracy(threshold=0.7), _batches_binary("binary_accuracy_threshold"))


def _batches_categorical():
    r = rng_for("categorical_accuracy")
    p = r.uniform(0, 1, size=(5, 4)).astype(np.float32)
    p[0] = [0.3, 0.3, 0.1, 0.3]  # tie: argmax takes the first
    return [
        (onehot(r.integers(0, 4, size=(5,)), 4), p, None),
        (onehot(r.integers(0, 4, size=(5,)), 4), r.normal(size=(5, 4)).astype(np.float32),
         r.uniform(0, 2, size=(5,)).astype(np.float32)),
        "reset",
        (onehot(np.array([0, 1]), 3), np.array([[0.1, 0.8, 0.1], [0.2, 0.5, 0.3]], np.float32), None),
    ]


metric_case("categorical_accuracy", "CategoricalAccuracy, a tie in y_pred (first index wins)",
            lambda: M.CategoricalAccuracy(), _batches_categorical())


def _batches_sparse():
    r = rng_for("sparse_categorical_accuracy")
    return [
        (r.integers(0, 3, size=(6,)).astype(np.int64), r.normal(size=(6, 3)).astype(np.float32), None),
        (r.integers(0, 3, size=(6, 1)).astype(np.int64), r.normal(size=(6, 3)).astype(np.float32),
         r.uniform(0, 2, size=(6,)).astype(np.float32)),
        (r.integers(0, 3, size=(4,)).astype(np.float32), r.normal(size=(4, 3)).astype(np.float32),
         r.uniform(0, 2, size=(4, 1)).astype(np.float32)),
        "reset",
        (np.array([2, 1], np.int64), np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]], np.float32), None),
    ]


metric_case("sparse_categorical_accuracy", "SparseCategoricalAccuracy with labels [6], [6,1] (int64) and [4] "
            "(float32)", lambda: M.SparseCategoricalAccuracy(), _batches_sparse())


def run_metric_case(name, description, make_metric, batches):
    metric = make_metric()
    steps = []
    for b in batches:
        if b == "reset":
            metric.reset_state()
            steps.append({"reset": True})
            continue
        yt, yp, sw = b
        kwargs = {} if sw is None else {"sample_weight": tf.constant(sw)}
        if yt is None:
            metric.update_state(tf.constant(yp), **kwargs)
        else:
            metric.update_state(tf.constant(yt), tf.constant(yp), **kwargs)
        step = {"y_true": None if yt is None else tensor_json(yt), "y_pred": tensor_json(yp),
                "sample_weight": None if sw is None else tensor_json(sw),
                "result": float(metric.result().numpy())}
        steps.append(step)
    return {
        "case": name,
        "description": description,
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "metric": json_safe(M.serialize(metric)),
        "steps": steps,
    }


def main():
    total = 0
    for folder in (LOSS_DIR, METRIC_DIR):
        os.makedirs(folder, exist_ok=True)
        for old in glob.glob(os.path.join(folder, "*.json")):
            os.remove(old)
    for case in LOSS_CASES:
        total += write_json(os.path.join(LOSS_DIR, case[0] + ".json"), run_loss_case(*case))
    for case in METRIC_CASES:
        total += write_json(os.path.join(METRIC_DIR, case[0] + ".json"), run_metric_case(*case))
    index = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__}
    total += write_json(os.path.join(LOSS_DIR, "INDEX.json"), dict(index, cases=[c[0] for c in LOSS_CASES]))
    total += write_json(os.path.join(METRIC_DIR, "INDEX.json"), dict(index, cases=[c[0] for c in METRIC_CASES]))
    print(f"wrote {len(LOSS_CASES)} loss cases and {len(METRIC_CASES)} metric cases, {total} bytes")


if __name__ == "__main__":
    main()
