#!/usr/bin/env python3
"""Generate golden convolution and pooling layer fixtures with real TensorFlow 2.21 + tf_keras 2.21.

Numeric cases (Tests/Fixtures/layers/conv_<case>.json): a tf_keras layer (Conv2D, Conv1D, MaxPooling2D,
AveragePooling2D, GlobalAveragePooling1D/2D) built with the case's arguments, its kernel and bias set to
fixed values, called on a fixed input under `tf.GradientTape`; the fixture holds the input, the weights,
a fixed random tensor `r`, the output, and the gradients of `sum(output * r)` with respect to the input,
the kernel and the bias. Inputs and weights are small multiples of 1/8 and 1/16, so the convolutions'
sums are exact in float32 and the files stay short. Each case also records `layer.compute_output_shape`.

Config cases (Tests/Fixtures/layers/conv_configs.json): `layer.get_config()` of tf_keras 2.21 and of
Keras 3.15.1 for the same constructor arguments (defaults and customized ones), in their key order, and,
for Keras 3, whether a layer in a built Sequential records a `build_config`.

Each case's data comes from `numpy.random.default_rng(crc32(case_name))`. The script deletes the
`conv_*.json` files in its folder first, so the output depends only on the script; two runs give
byte-identical files.

Keras 3 writes an L2 factor unrounded (`{"l2": 0.01}`) but an L1 factor rounded to float32; the config cases use
L1 only, the form both Kerases round.

Usage:  /work/venv-tf/bin/python scripts/golden/generate_conv_layers.py
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
import keras  # noqa: E402

assert tf.__version__ == "2.21.0", tf.__version__
assert tf_keras.__version__ == "2.21.0", tf_keras.__version__
assert keras.__version__ == "3.15.1", keras.__version__

OUT_DIR = os.path.join(FIXTURES, "layers")
KL = tf_keras.layers


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def flat(a):
    return np.asarray(a).reshape(-1).tolist()


def tensor_json(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "dtype": "float32", "values": flat(a)}


def dyadic(rng, shape, denominator, bound):
    """Integers in [-bound, bound] over `denominator`: exact in float32, short in JSON."""
    return (rng.integers(-bound, bound + 1, size=shape) / denominator).astype(np.float32)


CASES = []


def case(name, layer, args, input_shape, description, ties=False):
    CASES.append((name, layer, args, input_shape, description, ties))


# Conv2D: kernel [kh, kw, in, filters].
case("conv2d_valid", "Conv2D", {"filters": 3, "kernel_size": [3, 3]}, [2, 5, 6, 2], "3x3, valid, bias")
case("conv2d_same", "Conv2D", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}, [2, 5, 6, 2], "3x3, same")
case("conv2d_same_even_kernel", "Conv2D", {"filters": 2, "kernel_size": [2, 4], "padding": "same"}, [1, 5, 5, 2],
     "2x4 same: the extra pad goes to the bottom/right")
case("conv2d_stride2_same", "Conv2D", {"filters": 2, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same"},
     [2, 7, 6, 2], "stride 2, same, odd height")
case("conv2d_strides_valid", "Conv2D", {"filters": 2, "kernel_size": [3, 2], "strides": [2, 3]}, [1, 7, 8, 2],
     "strides (2, 3), kernel (3, 2), valid")
case("conv2d_stride3_same", "Conv2D", {"filters": 2, "kernel_size": [4, 4], "strides": [3, 3], "padding": "same"},
     [1, 8, 8, 1], "4x4 kernel, stride 3, same, one channel")
case("conv2d_dilation2_same", "Conv2D", {"filters": 2, "kernel_size": [3, 3], "dilation_rate": [2, 2], "padding": "same"},
     [1, 7, 7, 2], "dilation 2, same")
case("conv2d_dilation_valid", "Conv2D", {"filters": 2, "kernel_size": [2, 3], "dilation_rate": [2, 1]}, [1, 6, 7, 2],
     "dilation (2, 1), valid")
case("conv2d_nobias_relu", "Conv2D", {"filters": 3, "kernel_size": [3, 3], "padding": "same", "use_bias": False,
                                      "activation": "relu"}, [2, 4, 4, 2], "no bias, relu")
case("conv2d_relu_bias", "Conv2D", {"filters": 3, "kernel_size": [2, 2], "activation": "relu"}, [2, 4, 4, 2],
     "bias then relu (the fused path)")
case("conv2d_1x1", "Conv2D", {"filters": 3, "kernel_size": [1, 1]}, [2, 3, 4, 4], "1x1 kernel (no im2col)")
case("conv2d_1x1_stride2", "Conv2D", {"filters": 2, "kernel_size": [1, 1], "strides": [2, 2]}, [1, 5, 4, 3],
     "1x1 kernel, stride 2")
# Conv1D: kernel [k, in, filters].
case("conv1d_valid", "Conv1D", {"filters": 3, "kernel_size": [3]}, [2, 9, 2], "k 3, valid")
case("conv1d_same_stride2", "Conv1D", {"filters": 2, "kernel_size": [4], "strides": [2], "padding": "same"}, [2, 9, 2],
     "k 4, stride 2, same")
case("conv1d_causal_dilation2", "Conv1D", {"filters": 2, "kernel_size": [3], "dilation_rate": [2], "padding": "causal"},
     [2, 9, 2], "k 3, dilation 2, causal")
case("conv1d_tanh_nobias", "Conv1D", {"filters": 2, "kernel_size": [2], "padding": "same", "activation": "tanh",
                                      "use_bias": False}, [1, 6, 3], "tanh, no bias")
# Pooling.
case("maxpool2d_valid", "MaxPooling2D", {"pool_size": [2, 2]}, [2, 6, 6, 2], "2x2, strides = pool size")
case("maxpool2d_same_odd", "MaxPooling2D", {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}, [2, 5, 7, 2],
     "3x3, stride 2, same, odd sizes")
case("maxpool2d_overlap", "MaxPooling2D", {"pool_size": [3, 2], "strides": [1, 2]}, [1, 6, 6, 2],
     "3x2 windows, strides (1, 2): windows overlap")
case("maxpool2d_ties", "MaxPooling2D", {"pool_size": [2, 2], "strides": [1, 1], "padding": "same"}, [1, 4, 5, 2],
     "inputs with many equal values: the gradient goes to the first maximum", ties=True)
case("avgpool2d_valid", "AveragePooling2D", {"pool_size": [2, 2]}, [2, 6, 6, 2], "2x2")
case("avgpool2d_same_odd", "AveragePooling2D", {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}, [2, 5, 7, 2],
     "3x3, stride 2, same: border windows divide by their count of valid elements")
case("avgpool2d_same_stride1", "AveragePooling2D", {"pool_size": [3, 2], "strides": [1, 1], "padding": "same"},
     [1, 4, 5, 2], "3x2, stride 1, same")
case("global_avg_pool1d", "GlobalAveragePooling1D", {}, [2, 5, 3], "mean over steps")
case("global_avg_pool1d_keepdims", "GlobalAveragePooling1D", {"keepdims": True}, [2, 5, 3], "keepdims")
case("global_avg_pool2d", "GlobalAveragePooling2D", {}, [2, 3, 4, 3], "mean over rows and columns")
case("global_avg_pool2d_keepdims", "GlobalAveragePooling2D", {"keepdims": True}, [2, 3, 4, 3], "keepdims")


def make_layer(module, layer, args, name=None):
    cls = getattr(module.layers, layer)
    kwargs = dict(args)
    if name is not None:
        kwargs["name"] = name
    return cls(**kwargs)


def run_case(name, layer_name, args, input_shape, description, ties):
    rng = rng_for(name)
    if ties:
        x = (rng.integers(0, 3, size=input_shape) / 2).astype(np.float32)
    else:
        x = dyadic(rng, input_shape, 8, 16)
    layer = make_layer(tf_keras, layer_name, args, name="layer")
    layer.build(x.shape)
    weights = {}
    if layer_name in ("Conv2D", "Conv1D"):
        kernel = dyadic(rng, layer.kernel.shape, 16, 16)
        layer.kernel.assign(kernel)
        weights["kernel"] = kernel
        if layer.use_bias:
            bias = dyadic(rng, layer.bias.shape, 8, 8)
            layer.bias.assign(bias)
            weights["bias"] = bias
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
        r = dyadic(rng, y.shape, 4, 8)
        target = tf.reduce_sum(y * r)
    sources = [xt] + [v for v in layer.trainable_weights]
    grads = tape.gradient(target, sources)
    out = {
        "case": name, "description": description, "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
        "layer": layer_name, "args": args,
        "output_shape": [d if d is not None else -1 for d in layer.compute_output_shape(x.shape).as_list()],
        "input": tensor_json(x),
    }
    for key, value in weights.items():
        out[key] = tensor_json(value)
    out["r"] = tensor_json(r)
    out["output"] = tensor_json(y.numpy())
    out["grad_input"] = tensor_json(grads[0].numpy())
    for v, g in zip(layer.trainable_weights, grads[1:]):
        short = v.name.split("/")[-1].split(":")[0]
        out["grad_" + short] = tensor_json(g.numpy())
    return out


# Config cases: (name, layer, constructor kwargs for both Kerases).
CONFIG_CASES = [
    ("conv2d_default", "Conv2D", {"filters": 8, "kernel_size": 3}),
    ("conv2d_custom", "Conv2D", {
        "filters": 4, "kernel_size": (3, 5), "strides": (2, 1), "padding": "same", "activation": "relu",
        "use_bias": False, "kernel_initializer": "he_normal", "bias_initializer": "ones",
        "kernel_regularizer": {"class_name": "L1", "config": {"l1": 0.01}}, "bias_regularizer": {"class_name": "L1", "config": {"l1": 0.001}},
        "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": [0, 1, 2]}},
        "name": "conv_a"}),
    ("conv2d_dilation", "Conv2D", {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "activation": "tanh",
                                   "kernel_initializer": {"class_name": "RandomNormal", "config": {"stddev": 0.1, "seed": 7}}}),
    ("conv1d_default", "Conv1D", {"filters": 5, "kernel_size": 4}),
    ("conv1d_causal", "Conv1D", {"filters": 3, "kernel_size": 2, "strides": 1, "padding": "causal", "dilation_rate": 2,
                                 "activation": "sigmoid", "name": "tcn"}),
    ("maxpool2d_default", "MaxPooling2D", {}),
    ("maxpool2d_custom", "MaxPooling2D", {"pool_size": (3, 2), "strides": (1, 2), "padding": "same", "name": "mp"}),
    ("avgpool2d_default", "AveragePooling2D", {"pool_size": 2}),  # Keras 3 has no default pool size
    ("avgpool2d_custom", "AveragePooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}),
    ("global_avg_pool1d_default", "GlobalAveragePooling1D", {}),
    ("global_avg_pool1d_keepdims", "GlobalAveragePooling1D", {"keepdims": True}),
    ("global_avg_pool2d_default", "GlobalAveragePooling2D", {}),
    ("global_avg_pool2d_keepdims", "GlobalAveragePooling2D", {"keepdims": True, "name": "gap"}),
]


def keras3_kwargs(kwargs):
    """Keras 3 spells the serialized regularizer/constraint/initializer dicts with a module; pass objects."""
    out = dict(kwargs)
    for key in ("kernel_regularizer", "bias_regularizer"):
        if isinstance(out.get(key), dict):
            out[key] = keras.regularizers.get(out[key])
    for key in ("kernel_constraint",):
        if isinstance(out.get(key), dict):
            out[key] = keras.constraints.get(out[key])
    for key in ("kernel_initializer",):
        if isinstance(out.get(key), dict):
            out[key] = keras.initializers.get(out[key])
    return out


def tfkeras_kwargs(kwargs):
    out = dict(kwargs)
    for key in ("kernel_regularizer", "bias_regularizer"):
        if isinstance(out.get(key), dict):
            out[key] = tf_keras.regularizers.get(out[key])
    for key in ("kernel_constraint",):
        if isinstance(out.get(key), dict):
            out[key] = tf_keras.constraints.get(out[key])
    for key in ("kernel_initializer",):
        if isinstance(out.get(key), dict):
            out[key] = tf_keras.initializers.get(out[key])
    return out


def python_kwargs(kwargs):
    return json_safe({k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()})


def keras3_records_build_config(layer_name, kwargs):
    input_shape = (6, 6, 2) if "2D" in layer_name else (6, 2)
    model = keras.Sequential([keras.Input(input_shape), getattr(keras.layers, layer_name)(**keras3_kwargs(kwargs))])
    entry = model.get_config()["layers"][1]
    return "build_config" in entry


def config_cases():
    out = []
    for name, layer_name, kwargs in CONFIG_CASES:
        tk_layer = getattr(tf_keras.layers, layer_name)(**tfkeras_kwargs(kwargs))
        k3_layer = getattr(keras.layers, layer_name)(**keras3_kwargs(kwargs))
        out.append({
            "name": name, "layer": layer_name, "kwargs": python_kwargs(kwargs),
            "tf_keras": json_safe(tk_layer.get_config()),
            "keras3": json_safe(k3_layer.get_config()),
            "keras3_build_config": keras3_records_build_config(layer_name, kwargs),
        })
    return out


def check_refusals():
    """What tf_keras refuses, so the Swift errors mirror real behaviour (asserted, not written)."""
    def raises(f):
        try:
            f()
        except ValueError:
            return True
        return False
    assert raises(lambda: KL.Conv2D(4, 3, strides=2, dilation_rate=2))
    assert raises(lambda: KL.Conv2D(0, 3))
    assert raises(lambda: KL.Conv2D(4, 0))
    assert raises(lambda: KL.Conv2D(4, 3, padding="causal"))
    assert raises(lambda: KL.Conv2D(4, 3).build((1, 1, 1, 1)))  # output -1 x -1 (tf_keras allows 0 x 0)
    # Same-padding max pooling with ties: the gradient goes to the first maximum in window order.
    x = tf.constant([[[[1.0], [1.0]], [[1.0], [1.0]]]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.max_pool2d(x, 2, 2, "VALID")
    g = tape.gradient(y, x).numpy().reshape(-1).tolist()
    assert g == [1.0, 0.0, 0.0, 0.0], g


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for path in glob.glob(os.path.join(OUT_DIR, "conv_*.json")):
        os.remove(path)
    check_refusals()
    total = 0
    for c in CASES:
        total += write_json(os.path.join(OUT_DIR, f"conv_{c[0]}.json"), run_case(*c))
    total += write_json(os.path.join(OUT_DIR, "conv_configs.json"),
                        {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "keras": keras.__version__,
                         "cases": config_cases()})
    print(f"wrote {len(CASES)} numeric cases and {len(CONFIG_CASES)} config cases, {total} bytes, to {OUT_DIR}")


if __name__ == "__main__":
    main()
