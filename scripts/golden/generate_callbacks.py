#!/usr/bin/env python3
"""Generate golden EarlyStopping decisions with real tf_keras 2.21.

Each case runs tf_keras.callbacks.EarlyStopping(**options) over a scripted series of monitored values
(one `on_epoch_end` per epoch, the model's weights set to [epoch] before each call, so the restored
weights name the epoch they came from), stopping the series where the callback sets `stop_training`.
The fixture holds the epochs that ran, `stopped_epoch`, `best_epoch`, and the weights after
`on_train_end` (with restore_best_weights: the epoch whose weights were restored).

It also runs tf_keras' ReduceLROnPlateau over scripted monitored values with a real tf_keras SGD
(the learning rate after each epoch, float32 as Keras keeps it) and CSVLogger over scripted logs (the
exact file text, also when appending to an existing log).

Output: Tests/Fixtures/callbacks/early_stopping.json, reduce_lr_on_plateau.json, csv_logger.json

Usage:  /work/venv-tf/bin/python scripts/golden/generate_callbacks.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, write_json  # noqa: E402

import numpy as np  # noqa: E402
import tf_keras  # noqa: E402


class FakeModel:
    """What EarlyStopping touches: stop_training and get/set_weights."""
    def __init__(self):
        self.stop_training = False
        self.weights = [np.array([-1.0])]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]


FALLING = [1.0, 0.8, 0.7, 0.69, 0.695, 0.7, 0.71, 0.68, 0.7, 0.72, 0.73, 0.74]
RISING_ACC = [0.5, 0.6, 0.65, 0.64, 0.66, 0.66, 0.65, 0.64, 0.63, 0.62]
CASES = [
    ("patience0", "loss", FALLING, dict(monitor="loss", patience=0)),
    ("patience1", "loss", FALLING, dict(monitor="loss", patience=1)),
    ("patience2", "loss", FALLING, dict(monitor="loss", patience=2)),
    ("patience3", "loss", FALLING, dict(monitor="loss", patience=3)),
    ("min_delta", "loss", FALLING, dict(monitor="loss", patience=1, min_delta=0.05)),
    ("restore_best", "loss", FALLING, dict(monitor="loss", patience=2, restore_best_weights=True)),
    ("restore_never_stops", "loss", FALLING[:6], dict(monitor="loss", patience=5, restore_best_weights=True)),
    ("baseline", "loss", FALLING, dict(monitor="loss", patience=2, baseline=0.75)),
    ("start_from_epoch", "loss", FALLING, dict(monitor="loss", patience=0, start_from_epoch=4)),
    ("max_mode_on_loss", "loss", FALLING, dict(monitor="loss", patience=0, mode="max")),
    ("auto_accuracy", "val_accuracy", RISING_ACC, dict(monitor="val_accuracy", patience=2)),
    ("auto_auc", "val_auc", RISING_ACC, dict(monitor="val_auc", patience=1)),
    ("auto_acc_restore", "acc", RISING_ACC, dict(monitor="acc", patience=3, restore_best_weights=True)),
]


def run(monitor, values, options):
    cb = tf_keras.callbacks.EarlyStopping(**options)
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_begin()
    ran = []
    for epoch, value in enumerate(values):
        model.weights = [np.array([float(epoch)])]
        cb.on_epoch_end(epoch, {monitor: value})
        ran.append(epoch)
        if model.stop_training:
            break
    cb.on_train_end()
    return dict(epochs=ran, stopped_epoch=int(cb.stopped_epoch), best_epoch=int(cb.best_epoch),
                final_weight=float(model.weights[0][0]))


PLATEAU_CASES = [
    ("defaults_patience2", "val_loss", FALLING, dict(patience=2)),
    ("patience0", "loss", FALLING, dict(monitor="loss", patience=0, factor=0.5)),
    ("cooldown", "loss", FALLING, dict(monitor="loss", patience=1, factor=0.5, cooldown=2)),
    ("min_lr", "loss", FALLING, dict(monitor="loss", patience=0, factor=0.1, min_lr=0.004)),
    ("min_delta", "loss", FALLING, dict(monitor="loss", patience=1, factor=0.5, min_delta=0.05)),
    ("auto_accuracy", "val_accuracy", RISING_ACC, dict(monitor="val_accuracy", patience=1, factor=0.2)),
    ("max_mode", "loss", FALLING, dict(monitor="loss", patience=1, mode="max", factor=0.3)),
]


class LRModel:
    def __init__(self, lr):
        self.optimizer = tf_keras.optimizers.SGD(learning_rate=lr)
        self.stop_training = False


def run_plateau(monitor, values, options):
    cb = tf_keras.callbacks.ReduceLROnPlateau(**options)
    model = LRModel(0.1)
    cb.set_model(model)
    cb.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {monitor: value, "other": 1.0})
        rates.append(float(tf_keras.backend.get_value(model.optimizer.learning_rate)))
    return dict(initial_learning_rate=0.1, learning_rates=rates)


CSV_LOGS = [
    {"loss": 0.5, "accuracy": 0.30000001192092896},
    {"loss": 1e-05, "accuracy": 0.75},
    {"loss": float("nan"), "accuracy": 1.0},
]
CSV_VAL_LOGS = [
    {"loss": 0.25, "accuracy": 0.5, "val_loss": 0.125, "val_accuracy": 0.5},
    {"loss": 0.2, "accuracy": 0.6000000238418579, "val_loss": 0.1, "val_accuracy": 0.625},
]


def run_csv(logs, separator=",", append=False, existing=None):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "log.csv")
        if existing is not None:
            with open(path, "w") as f:
                f.write(existing)
        cb = tf_keras.callbacks.CSVLogger(path, separator=separator, append=append)
        cb.on_train_begin()
        for epoch, entry in enumerate(logs):
            cb.on_epoch_end(epoch, dict(entry))
        cb.on_train_end()
        with open(path, newline="") as f:
            return f.read()


def main():
    plateau = []
    for name, monitor, values, options in PLATEAU_CASES:
        plateau.append(dict(name=name, monitor=monitor, values=values, options=options, **run_plateau(monitor, values, options)))
    write_json(os.path.join(FIXTURES, "callbacks", "reduce_lr_on_plateau.json"),
               dict(generator="scripts/golden/generate_callbacks.py", tf_keras=tf_keras.__version__, cases=plateau))
    first = run_csv(CSV_VAL_LOGS)
    csv_cases = [
        dict(name="no_validation", logs=CSV_LOGS, separator=",", append=False, existing=None, text=run_csv(CSV_LOGS)),
        dict(name="validation", logs=CSV_VAL_LOGS, separator=",", append=False, existing=None, text=first),
        dict(name="semicolon", logs=CSV_VAL_LOGS, separator=";", append=False, existing=None,
             text=run_csv(CSV_VAL_LOGS, separator=";")),
        dict(name="append", logs=CSV_VAL_LOGS[1:], separator=",", append=True, existing=first,
             text=run_csv(CSV_VAL_LOGS[1:], append=True, existing=first)),
        dict(name="append_to_empty", logs=CSV_VAL_LOGS[:1], separator=",", append=True, existing="",
             text=run_csv(CSV_VAL_LOGS[:1], append=True, existing="")),
    ]
    write_json(os.path.join(FIXTURES, "callbacks", "csv_logger.json"),
               dict(generator="scripts/golden/generate_callbacks.py", tf_keras=tf_keras.__version__, cases=csv_cases),
               allow_nonfinite=True)
    cases = []
    for name, monitor, values, options in CASES:
        cases.append(dict(name=name, monitor=monitor, values=values, options=options, **run(monitor, values, options)))
    write_json(os.path.join(FIXTURES, "callbacks", "early_stopping.json"),
               dict(generator="scripts/golden/generate_callbacks.py", tf_keras=tf_keras.__version__, cases=cases))


if __name__ == "__main__":
    main()
