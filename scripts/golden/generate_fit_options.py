#!/usr/bin/env python3
"""Generate golden `fit`/`evaluate` runs with real tf_keras 2.21 for the options of issue 13.

A Dense(3) model with fixed weights on 10 fixed samples, SGD(0.1), shuffle=False (so the batch order is
the data's), trained with each option: sample_weight, class_weight (sparse and one-hot labels), both,
steps_per_epoch smaller and larger than an epoch's batches (tf_keras' batch stream for arrays, which
runs out after `epochs` passes), validation_split with sample weights, validation_freq; and evaluate with
sample weights. The fixture holds each run's history and final weights.

Output: Tests/Fixtures/training/fit_options.json

Usage:  /work/venv-tf/bin/python scripts/golden/generate_fit_options.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, write_json  # noqa: E402

import numpy as np  # noqa: E402
import tf_keras  # noqa: E402

rng = np.random.default_rng(13)
X = rng.normal(size=(10, 4)).astype(np.float32)
Y = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 1], dtype=np.int64)
Y_ONE_HOT = np.eye(3, dtype=np.float32)[Y]
SW = rng.uniform(0.2, 2.0, size=(10,)).astype(np.float32)
KERNEL = rng.normal(scale=0.5, size=(4, 3)).astype(np.float32)
BIAS = np.array([0.1, -0.2, 0.05], dtype=np.float32)
CW = {0: 1.0, 1: 2.0, 2: 0.5}


def model(one_hot=False):
    m = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,))])
    m.set_weights([KERNEL, BIAS])
    loss = (tf_keras.losses.CategoricalCrossentropy(from_logits=True) if one_hot
            else tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.1), loss=loss, metrics=["accuracy"])
    return m


CASES = [
    ("plain", dict(batch_size=4, epochs=2)),
    ("sample_weight", dict(batch_size=4, epochs=2, sample_weight=True)),
    ("class_weight", dict(batch_size=4, epochs=2, class_weight=CW)),
    ("class_weight_one_hot", dict(batch_size=4, epochs=2, class_weight=CW, one_hot=True)),
    ("sample_and_class_weight", dict(batch_size=5, epochs=2, sample_weight=True, class_weight=CW)),
    ("steps_per_epoch_2", dict(batch_size=4, epochs=3, steps_per_epoch=2)),
    ("steps_per_epoch_4_runs_out", dict(batch_size=4, epochs=3, steps_per_epoch=4)),
    ("validation_split_weighted", dict(batch_size=4, epochs=2, sample_weight=True, validation_split=0.2)),
    ("validation_freq", dict(batch_size=5, epochs=4, validation_split=0.2, validation_freq=2)),
]


def run(options):
    o = dict(options)
    one_hot = o.pop("one_hot", False)
    m = model(one_hot)
    kwargs = dict(o)
    if kwargs.pop("sample_weight", False):
        kwargs["sample_weight"] = SW
    history = m.fit(X, Y_ONE_HOT if one_hot else Y, shuffle=False, verbose=0, **kwargs)
    return dict(epochs=history.epoch, history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                weights=[w.flatten().tolist() for w in m.get_weights()])


def main():
    cases = []
    for name, options in CASES:
        print(name, file=sys.stderr)
        out = run(options)
        printable = {k: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()}) for k, v in options.items()}
        cases.append(dict(name=name, options=printable, **out))
    m = model()
    plain = m.evaluate(X, Y, batch_size=4, verbose=0, return_dict=True)
    weighted = m.evaluate(X, Y, batch_size=4, sample_weight=SW, verbose=0, return_dict=True)
    write_json(os.path.join(FIXTURES, "training", "fit_options.json"),
               dict(generator="scripts/golden/generate_fit_options.py", tf_keras=tf_keras.__version__,
                    x=X.flatten().tolist(), y=Y.tolist(), sample_weight=SW.tolist(), kernel=KERNEL.flatten().tolist(),
                    bias=BIAS.tolist(), class_weight={str(k): v for k, v in CW.items()}, cases=cases,
                    evaluate=dict(plain={k: float(v) for k, v in plain.items()},
                                  weighted={k: float(v) for k, v in weighted.items()})))


if __name__ == "__main__":
    main()
