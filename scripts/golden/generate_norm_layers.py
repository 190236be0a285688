#!/usr/bin/env python3
"""Golden values of the normalization and core layers with real TensorFlow 2.21 + tf_keras 2.21.

Layers: BatchNormalization, LayerNormalization, Activation, Softmax, ReLU, Reshape.

For every case (a layer with its constructor arguments and a fixed input) the fixture holds:
  - `input` and `r` (a fixed tensor of the output's shape); the layer's weights, set to fixed values after
    the build (`weights`, in `layer.weights` order, with `weight_names`);
  - `inference`: the output of `layer(x, training=False)`, and the gradients of `sum(output * r)` with
    respect to the input and to the scale/offset variables (`param_names`), with `tf.GradientTape`;
  - `training`: the same with `training=True`, after which `weights_after` holds every weight (the moving
    statistics updated by that one call);
  - `configs`: `get_config()` of the unbuilt and of the built layer, for tf_keras 2.21 and for Keras 3.15.1
    (the same constructor arguments), with `json.dumps`-compatible values.

Every layer is named after its case, so configs do not depend on creation order. Each case's data comes
from `numpy.random.default_rng(crc32(case))`.

Output: Tests/Fixtures/layers/<case>.json, Tests/Fixtures/layers/INDEX.json (the output folder's
*.json are deleted first).

Usage:  /work/venv-tf/bin/python scripts/golden/generate_norm_layers.py
"""

import glob
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, json_safe, write_json  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import keras as keras3  # noqa: E402

OUT_DIR = os.path.join(FIXTURES, "layers")
CASES = []


def case(name, class_name, kwargs, shape, *, data=None, weights=None, frozen=False, k3_kwargs=None):
    assert name not in {c["name"] for c in CASES}, name
    CASES.append(dict(name=name, class_name=class_name, kwargs=kwargs, shape=shape, data=data, weights=weights,
                      frozen=frozen, k3_kwargs=k3_kwargs if k3_kwargs is not None else kwargs))


def tensor_json(a):
    a = np.asarray(a)
    assert a.dtype == np.float32, a.dtype
    return {"shape": list(a.shape), "dtype": "float32", "values": a.reshape(-1).tolist()}


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def normal_input(rng, shape, spread=1.5, shift=True):
    x = rng.normal(size=shape) * spread
    if shift:
        # A different offset per last-axis index, so that the statistics are not all near 0.
        x = x + np.linspace(-1.0, 2.0, shape[-1])
    return x.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------

for act in ["relu", "sigmoid", "tanh", "softmax", "softplus", "linear"]:
    case(f"activation_{act}", "Activation", {"activation": act}, [3, 5])

case("softmax_default", "Softmax", {}, [3, 5])
case("softmax_axis1", "Softmax", {"axis": 1}, [2, 3, 4])


def relu_edges(values):
    def make(rng, shape):
        x = (rng.normal(size=shape) * 3).astype(np.float32).reshape(-1)
        slots = rng.permutation(x.size)
        for i, v in enumerate(values):
            x[slots[i]] = v
        return x.reshape(shape)
    return make


case("relu_default", "ReLU", {}, [4, 5], data=relu_edges([0.0, -0.0, 1e-30]))
case("relu_leaky", "ReLU", {"negative_slope": 0.2}, [4, 5], data=relu_edges([0.0]))
case("relu_max6", "ReLU", {"max_value": 6.0}, [4, 5], data=relu_edges([0.0, 6.0, 7.5, 10.0, 5.999]))
case("relu_max1", "ReLU", {"max_value": 1.0}, [4, 5], data=relu_edges([0.0, 1.0, 3.0]))
case("relu_full", "ReLU", {"max_value": 2.5, "negative_slope": 0.1, "threshold": 0.5}, [4, 6],
     data=relu_edges([0.0, 0.5, 2.5, 3.0, -1.0, 0.25]))
case("relu_max6_leaky", "ReLU", {"max_value": 6.0, "negative_slope": 0.3}, [4, 5], data=relu_edges([0.0, 6.0, 8.0]))

case("reshape_infer", "Reshape", {"target_shape": [2, -1]}, [3, 6])
case("reshape_3d", "Reshape", {"target_shape": [3, 2, 2]}, [2, 12])
case("reshape_flat", "Reshape", {"target_shape": [-1]}, [2, 3, 4])


case("bn_2d", "BatchNormalization", {}, [6, 3])
case("bn_2d_options", "BatchNormalization", {"momentum": 0.9, "epsilon": 1e-5, "center": False}, [5, 4])
case("bn_2d_noscale", "BatchNormalization", {"momentum": 0.5, "scale": False}, [8, 3])
case("bn_2d_batch1", "BatchNormalization", {}, [1, 3])
case("bn_3d", "BatchNormalization", {}, [2, 3, 4])
case("bn_4d", "BatchNormalization", {}, [2, 3, 2, 4])
case("bn_4d_momentum", "BatchNormalization", {"momentum": 0.7, "epsilon": 0.01}, [3, 2, 2, 3])
case("bn_4d_axis1", "BatchNormalization", {"axis": 1}, [2, 3, 2, 2])
case("bn_4d_axis2", "BatchNormalization", {"axis": 2}, [2, 2, 3, 2])
case("bn_4d_batch1", "BatchNormalization", {}, [1, 1, 1, 3])
case("bn_5d", "BatchNormalization", {}, [2, 2, 2, 2, 3])
case("bn_frozen", "BatchNormalization", {}, [6, 3], frozen=True)
case("bn_regularized", "BatchNormalization",
     {"gamma_regularizer": {"class_name": "L2", "config": {"l2": 0.01}},
      "beta_initializer": {"class_name": "Constant", "config": {"value": 0.25}},
      "moving_variance_initializer": {"class_name": "Constant", "config": {"value": 2.0}}}, [4, 3])

case("ln_2d", "LayerNormalization", {}, [4, 5])
case("ln_3d", "LayerNormalization", {}, [2, 3, 4])
case("ln_4d", "LayerNormalization", {}, [2, 2, 2, 3])
case("ln_axis1", "LayerNormalization", {"axis": 1}, [2, 3, 4])
case("ln_options", "LayerNormalization", {"epsilon": 1e-5, "center": False}, [3, 6])
case("ln_noscale", "LayerNormalization", {"scale": False}, [3, 6])
case("ln_small_epsilon", "LayerNormalization", {"epsilon": 1e-6}, [3, 4])


# ---------------------------------------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------------------------------------

def make_layer(module, c):
    kwargs = dict(c["k3_kwargs"] if module is keras3 else c["kwargs"])
    for key in list(kwargs):
        if isinstance(kwargs[key], dict):
            get = module.initializers.get if key.endswith("initializer") else module.regularizers.get
            kwargs[key] = get(kwargs[key])
    return getattr(module.layers, c["class_name"])(name=c["name"], **kwargs)


def set_fixed_weights(layer, rng, c):
    values = []
    for w in layer.weights:
        n = w.shape[0]
        short = w.name.split("/")[-1].split(":")[0]
        if short == "gamma":
            v = rng.uniform(0.5, 1.5, size=w.shape)
        elif short == "beta":
            v = rng.normal(size=w.shape) * 0.5
        elif short == "moving_mean":
            v = rng.normal(size=w.shape) * 0.3
        elif short == "moving_variance":
            v = rng.uniform(0.5, 2.0, size=w.shape)
        else:
            raise ValueError(w.name)
        assert len(w.shape) == 1 and n > 0
        values.append(np.asarray(v, np.float32))
    layer.set_weights(values)
    return values


def run_mode(layer, x, r, training):
    xt = tf.constant(x)
    params = [w for w in layer.weights if w.name.split("/")[-1].split(":")[0] in ("gamma", "beta")]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        tape.watch(params)
        y = layer(xt, training=training)
        loss = tf.reduce_sum(y * tf.constant(r))
    out = {"output": tensor_json(y.numpy()), "grad_input": tensor_json(tape.gradient(loss, xt).numpy())}
    out["grad_params"] = [tensor_json(tape.gradient(loss, p).numpy()) for p in params]
    return out


def configs(module, c, x):
    unbuilt = make_layer(module, c)
    if c["frozen"]:
        unbuilt.trainable = False
    first = json_safe(json.loads(json.dumps(unbuilt.get_config(), default=_np_default)))
    unbuilt(x)
    second = json_safe(json.loads(json.dumps(unbuilt.get_config(), default=_np_default)))
    return {"unbuilt": first, "built": second}


def _np_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "as_list"):
        return o.as_list()
    if isinstance(o, (list, tuple)) or type(o).__name__ == "ListWrapper":
        return list(o)
    raise TypeError(type(o))


def run_case(c):
    rng = rng_for(c["name"])
    shape = c["shape"]
    x = c["data"](rng, shape) if c["data"] else normal_input(rng, shape)
    layer = make_layer(tf_keras, c)
    layer(x, training=False)  # builds inside the layer's name scope ("bn_2d/gamma:0")
    weights = set_fixed_weights(layer, rng, c) if layer.weights else []
    if c["frozen"]:
        layer.trainable = False
    y0 = layer(x, training=False).numpy()
    r = rng.normal(size=y0.shape).astype(np.float32)
    inference = run_mode(layer, x, r, False)
    for w, v in zip(layer.get_weights(), weights):
        assert np.array_equal(w, v), "inference changed a weight"
    training = run_mode(layer, x, r, True)
    training["weights_after"] = [tensor_json(w) for w in layer.get_weights()]
    return {
        "case": c["name"],
        "class_name": c["class_name"],
        "frozen": c["frozen"],
        "fused": bool(getattr(layer, "fused", False) or getattr(layer, "_fused", False)),
        "input": tensor_json(x),
        "r": tensor_json(r),
        "weight_names": [w.name for w in layer.weights],
        "trainable_weight_names": [w.name for w in layer.trainable_weights],
        "weights": [tensor_json(w) for w in weights],
        "inference": inference,
        "training": training,
        "configs": {"tf_keras": configs(tf_keras, c, x), "keras3": configs(keras3, c, x)},
    }


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for old in glob.glob(os.path.join(OUT_DIR, "*.json")):
        os.remove(old)
    index = []
    for c in CASES:
        fixture = run_case(c)
        write_json(os.path.join(OUT_DIR, c["name"] + ".json"), fixture)
        index.append({"case": c["name"], "class_name": c["class_name"], "kwargs": json_safe(c["kwargs"]),
                      "shape": c["shape"], "frozen": c["frozen"], "fused": fixture["fused"]})
    write_json(os.path.join(OUT_DIR, "INDEX.json"), {"tf_version": tf.__version__, "tf_keras_version": tf_keras.__version__,
                                                     "keras3_version": keras3.__version__, "cases": index})
    print(f"wrote {len(index)} cases to {OUT_DIR}")


if __name__ == "__main__":
    main()
