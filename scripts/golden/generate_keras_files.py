#!/usr/bin/env python3
"""Generate small real Keras model/weight files and the numbers they must reproduce.

tf_keras 2.21 (legacy optimizers, HDF5 files) and Keras 3.15.1 (TensorFlow backend, .keras zip) each
train a tiny model for one epoch (2 steps, batch 8, shuffle=False) on fixed data, save it, load it back,
predict, and take one more `train_on_batch` step on the loaded model. The files are the Swift reader's
test inputs and the Swift writer's reference; the JSON holds the data and every expected number.

Output: Tests/Fixtures/keras_files/
  <case>.h5, <case>_weights.h5            tf_keras model.save(save_format="h5") / save_weights (.h5)
  keras3_*.keras, keras3_*.weights.h5     Keras 3 model.save / save_weights
  <case>.json                             data and expected numbers (see scripts/golden/README.md)
  INDEX.json, LAYOUTS.md                  case list; the h5py walk of every file and the zip member lists

Usage:  /work/venv-tf/bin/python scripts/golden/generate_keras_files.py

Determinism: all data comes from numpy.random.default_rng(crc32(case)), weights from
set_random_seed(crc32(case) % 2**31), and HDF5 files written by h5py are byte-identical across runs.
Keras 3 writes three run-dependent things into a .keras file: `date_saved` in metadata.json (now()),
the zip time of model.weights.h5 (now()), and `shared_object_id` in config.json (Python's id() of the
shared DTypePolicy). While saving, this script pins them: date 2026-01-01@00:00:00 and ids 1, 2, ...
in first-shared order (see `pinned_keras3_save`). Nothing else about the files is changed.
"""

import contextlib
import datetime as _datetime
import glob
import json
import os
import sys
import time as _time
import types
import warnings
import zipfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, json_safe, write_json  # noqa: E402
import keras_file_layout as kfl  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import keras  # noqa: E402
from keras.src.saving import saving_lib as k3_saving_lib  # noqa: E402
from keras.src.saving import serialization_lib as k3_serialization_lib  # noqa: E402

tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")

OUT_DIR = os.path.join(FIXTURES, "keras_files")
MAX_FILE_BYTES = 40 * 1024
PINNED_DATE = _datetime.datetime(2026, 1, 1, 0, 0, 0)


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def seed_for(name):
    return zlib.crc32(name.encode()) % (2 ** 31)


def flat(a):
    return np.asarray(a).reshape(-1).tolist()


def versions():
    return {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "keras": keras.__version__,
            "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version, "numpy": np.__version__}


def tensors_json(names, values):
    return [{"name": n, "shape": list(np.shape(v)), "dtype": np.asarray(v).dtype.name, "value": flat(v)}
            for n, v in zip(names, values)]


def assert_same_arrays(a, b, what):
    assert len(a) == len(b), what
    for i, (u, v) in enumerate(zip(a, b)):
        assert np.asarray(u).dtype == np.asarray(v).dtype and np.array_equal(u, v), f"{what}[{i}] differs"


def root_attrs_text(path):
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


# --------------------------------------------------------------------------
# tf_keras
# --------------------------------------------------------------------------

TK = tf_keras.layers


def tk_dense(name):
    return tf_keras.Sequential([tf_keras.Input(shape=(8,)), TK.Dense(6, activation="relu"), TK.Dense(3)])


def tk_embedding(name):
    return tf_keras.Sequential([tf_keras.Input(shape=(5,), dtype="int32"), TK.Embedding(20, 4), TK.Flatten(),
                                TK.Dense(3)])


def tk_dropout(name):
    return tf_keras.Sequential([tf_keras.Input(shape=(8,)), TK.Dense(6, activation="relu"), TK.Dropout(0.5),
                                TK.Dense(3)])


def float_data(name):
    rng = rng_for(name)
    return rng.standard_normal((16, 8)).astype(np.float32), rng.integers(0, 3, 16).astype(np.int64)


def index_data(name):
    rng = rng_for(name)
    return rng.integers(0, 20, (16, 5)).astype(np.int32), rng.integers(0, 3, 16).astype(np.int64)


def tk_compile(model, optimizer):
    model.compile(optimizer=optimizer,
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])


def run_tfkeras_trained(name, description, build, make_optimizer, data):
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed_for(name))
    x, y = data(name)
    model = build(name)
    tk_compile(model, make_optimizer())
    initial = model.get_weights()
    hist = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    weights = model.get_weights()
    opt_names = [w.name for w in model.optimizer.weights]
    opt_values = model.optimizer.get_weights()
    before_predictions = model.predict(x, verbose=0)

    h5_path = os.path.join(OUT_DIR, name + ".h5")
    weights_path = os.path.join(OUT_DIR, name + "_weights.h5")
    model.save(h5_path, save_format="h5")
    model.save_weights(weights_path)

    loaded = tf_keras.models.load_model(h5_path)
    assert type(loaded.optimizer).__name__ == type(model.optimizer).__name__
    predictions = loaded.predict(x, verbose=0)
    assert np.array_equal(predictions, before_predictions), name
    assert_same_arrays(loaded.get_weights(), weights, name + " weights after load")
    # Surprise: load_model creates the slots with _create_all_weights outside the optimizer's name scope, so
    # the loaded optimizer's weights are named "iter:0", "dense/kernel/m:0" (no "Adam/" prefix), while the
    # file (and the trained model) say "Adam/iter:0", "Adam/dense/kernel/m:0". set_weights is positional.
    loaded_opt_names = [w.name for w in loaded.optimizer.weights]
    with h5py.File(h5_path, "r") as f:
        file_opt_names = [n.decode() if isinstance(n, bytes) else n for n in f["optimizer_weights"].attrs["weight_names"]]
    assert file_opt_names == opt_names, (file_opt_names, opt_names)
    assert len(loaded_opt_names) == len(opt_names)
    loaded_opt_values = loaded.optimizer.get_weights()
    assert_same_arrays(loaded_opt_values, opt_values, name + " optimizer weights after load")

    # The save_weights file into a model rebuilt from the stored architecture gives the same predictions.
    attrs = root_attrs_text(h5_path)
    rebuilt = tf_keras.models.model_from_json(attrs["model_config"])
    rebuilt.load_weights(weights_path)
    assert np.array_equal(rebuilt.predict(x, verbose=0), predictions), name

    loaded_weights = tensors_json([w.name for w in loaded.weights], loaded.get_weights())
    iterations = int(loaded.optimizer.iterations.numpy())
    step = loaded.train_on_batch(x[:8], y[:8], return_dict=True)
    return {
        "case": name, "description": description, "versions": versions(),
        "files": {"model": name + ".h5", "weights": name + "_weights.h5"},
        "x_dtype": x.dtype.name, "x": x.tolist(), "y": y.tolist(),
        "fit": {"epochs": 1, "batch_size": 8, "shuffle": False,
                "history": {k: [float(v) for v in vs] for k, vs in hist.history.items()}},
        "initial_weights": tensors_json([w.name for w in model.weights], initial),
        "predictions": predictions.astype(np.float64).tolist(),
        "weights": loaded_weights,
        "optimizer_class": type(loaded.optimizer).__name__,
        "optimizer_weight_names": file_opt_names,
        "optimizer_weight_names_after_load": loaded_opt_names,
        "optimizer_weight_shapes": [list(np.shape(v)) for v in loaded_opt_values],
        "optimizer_weight_dtypes": [np.asarray(v).dtype.name for v in loaded_opt_values],
        "optimizer_weights": [flat(v) for v in loaded_opt_values],
        "iterations": iterations,
        "root_attributes": list(attrs.keys()),
        "model_config": attrs["model_config"],
        "training_config": attrs["training_config"],
        "backend": attrs["backend"], "keras_version": attrs["keras_version"],
        "step": {"x_rows": [0, 8], "result": {k: float(v) for k, v in step.items()},
                 "step_loss": float(step["loss"]),
                 "weights_after_step": tensors_json([w.name for w in loaded.weights], loaded.get_weights()),
                 "optimizer_weights_after_step": [flat(v) for v in loaded.optimizer.get_weights()],
                 "iterations_after_step": int(loaded.optimizer.iterations.numpy())},
    }


def run_tfkeras_dropout(name, description):
    """Dropout, never compiled, saved with include_optimizer=False; then compiled (not trained) and saved
    again with include_optimizer=False: neither file has training_config nor /optimizer_weights."""
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed_for(name))
    x, _ = float_data(name)
    model = tk_dropout(name)
    h5_path = os.path.join(OUT_DIR, name + ".h5")
    weights_path = os.path.join(OUT_DIR, name + "_weights.h5")
    model.save(h5_path, save_format="h5", include_optimizer=False)
    model.save_weights(weights_path)
    tk_compile(model, tf_keras.optimizers.legacy.Adam(learning_rate=0.01))
    noopt_path = os.path.join(OUT_DIR, name + "_compiled_noopt.h5")
    model.save(noopt_path, save_format="h5", include_optimizer=False)

    loaded = tf_keras.models.load_model(h5_path)
    predictions = loaded.predict(x, verbose=0)
    assert loaded.optimizer is None
    loaded2 = tf_keras.models.load_model(noopt_path)
    assert np.array_equal(loaded2.predict(x, verbose=0), predictions)
    attrs = root_attrs_text(h5_path)
    attrs2 = root_attrs_text(noopt_path)
    assert "training_config" not in attrs and "training_config" not in attrs2
    for p in (h5_path, noopt_path):
        with h5py.File(p, "r") as f:
            assert "optimizer_weights" not in f
    assert attrs == attrs2, "compiled + include_optimizer=False writes the same root attributes as uncompiled"
    return {
        "case": name, "description": description, "versions": versions(),
        "files": {"model": name + ".h5", "weights": name + "_weights.h5",
                  "model_compiled_noopt": name + "_compiled_noopt.h5"},
        "x_dtype": "float32", "x": x.tolist(),
        "predictions": predictions.astype(np.float64).tolist(),
        "weights": tensors_json([w.name for w in loaded.weights], loaded.get_weights()),
        "root_attributes": list(attrs.keys()),
        "model_config": attrs["model_config"],
        "backend": attrs["backend"], "keras_version": attrs["keras_version"],
    }


# --------------------------------------------------------------------------
# Keras 3
# --------------------------------------------------------------------------

@contextlib.contextmanager
def pinned_keras3_save():
    """Pin the three run-dependent values Keras 3 writes into a .keras file (see the module docstring)."""
    shim_dt = types.SimpleNamespace(datetime=types.SimpleNamespace(now=lambda: PINNED_DATE))
    stamp = _time.mktime(PINNED_DATE.timetuple())
    shim_time = types.SimpleNamespace(time=lambda: stamp, localtime=lambda t=None: PINNED_DATE.timetuple())
    stable = {}

    def stable_id(obj):
        return stable.setdefault(id(obj), len(stable) + 1)

    saved = (k3_saving_lib.datetime, zipfile.time)
    k3_saving_lib.datetime = shim_dt
    zipfile.time = shim_time
    k3_serialization_lib.id = stable_id
    try:
        yield
    finally:
        k3_saving_lib.datetime, zipfile.time = saved
        del k3_serialization_lib.id


def k3_model(dropout=False):
    L = keras.layers
    layers = [keras.Input(shape=(8,)), L.Dense(6, activation="relu")]
    if dropout:
        layers.append(L.Dropout(0.5))
    return keras.Sequential(layers + [L.Dense(3)])


def k3_opt_state(model):
    return [v.path or v.name for v in model.optimizer.variables], [v.numpy() for v in model.optimizer.variables]


def zip_texts(path):
    with zipfile.ZipFile(path) as z:
        return [i.filename for i in z.infolist()], z.read("config.json").decode(), z.read("metadata.json").decode()


def run_keras3_trained(name, description, make_optimizer=lambda: keras.optimizers.Adam(learning_rate=0.01)):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed_for(name))
    x, y = float_data(name)
    model = k3_model()
    model.compile(optimizer=make_optimizer(),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    initial = model.get_weights()
    hist = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    weights = model.get_weights()
    opt_names, opt_values = k3_opt_state(model)
    before_predictions = model.predict(x, verbose=0)

    keras_path = os.path.join(OUT_DIR, name + ".keras")
    weights_path = os.path.join(OUT_DIR, name + ".weights.h5")
    with pinned_keras3_save():
        model.save(keras_path)
        model.save_weights(weights_path)

    loaded = keras.saving.load_model(keras_path)
    predictions = loaded.predict(x, verbose=0)
    assert np.array_equal(predictions, before_predictions), name
    assert_same_arrays(loaded.get_weights(), weights, name + " weights after load")
    # The variable names differ after loading ("adam/dense_kernel_momentum" instead of
    # "adam/sequential_dense_kernel_momentum"): the file stores only indices (/optimizer/vars/0..n).
    loaded_names, loaded_values = k3_opt_state(loaded)
    assert len(loaded_names) == len(opt_names)
    assert_same_arrays(loaded_values, opt_values, name + " optimizer variables after load")

    rebuilt = k3_model()
    rebuilt.load_weights(weights_path)
    assert np.array_equal(rebuilt.predict(x, verbose=0), predictions), name

    members, config_text, metadata_text = zip_texts(keras_path)
    loaded_weights = tensors_json([w.path for w in loaded.weights], loaded.get_weights())
    step = loaded.train_on_batch(x[:8], y[:8], return_dict=True)
    after_names, after_values = k3_opt_state(loaded)
    assert after_names == loaded_names
    return {
        "case": name, "description": description, "versions": versions(),
        "files": {"model": name + ".keras", "weights": name + ".weights.h5"},
        "x_dtype": "float32", "x": x.tolist(), "y": y.tolist(),
        "fit": {"epochs": 1, "batch_size": 8, "shuffle": False,
                "history": {k: [float(v) for v in vs] for k, vs in hist.history.items()}},
        "initial_weights": tensors_json([w.path for w in model.weights], initial),
        "predictions": predictions.astype(np.float64).tolist(),
        "weights": loaded_weights,
        "optimizer_class": type(loaded.optimizer).__name__,
        "optimizer_weight_names": opt_names,
        "optimizer_weight_names_after_load": loaded_names,
        "optimizer_weight_shapes": [list(np.shape(v)) for v in loaded_values],
        "optimizer_weight_dtypes": [np.asarray(v).dtype.name for v in loaded_values],
        "optimizer_weights": [flat(v) for v in loaded_values],
        "iterations": int(loaded_values[0]),
        "zip_members": members,
        "config_json": config_text,
        "metadata_json": metadata_text,
        "step": {"x_rows": [0, 8], "result": {k: float(v) for k, v in step.items()},
                 "step_loss": float(step["loss"]),
                 "weights_after_step": tensors_json([w.path for w in loaded.weights], loaded.get_weights()),
                 "optimizer_weights_after_step": [flat(v) for v in after_values],
                 "iterations_after_step": int(after_values[0])},
    }


def run_keras3_dropout(name, description):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed_for(name))
    x, _ = float_data(name)
    model = k3_model(dropout=True)
    keras_path = os.path.join(OUT_DIR, name + ".keras")
    weights_path = os.path.join(OUT_DIR, name + ".weights.h5")
    with pinned_keras3_save():
        model.save(keras_path)
        model.save_weights(weights_path)
    loaded = keras.saving.load_model(keras_path)
    predictions = loaded.predict(x, verbose=0)
    rebuilt = k3_model(dropout=True)
    rebuilt.load_weights(weights_path)
    assert np.array_equal(rebuilt.predict(x, verbose=0), predictions), name
    members, config_text, metadata_text = zip_texts(keras_path)
    return {
        "case": name, "description": description, "versions": versions(),
        "files": {"model": name + ".keras", "weights": name + ".weights.h5"},
        "x_dtype": "float32", "x": x.tolist(),
        "predictions": predictions.astype(np.float64).tolist(),
        "weights": tensors_json([w.path for w in loaded.weights], loaded.get_weights()),
        "zip_members": members, "config_json": config_text, "metadata_json": metadata_text,
    }


# --------------------------------------------------------------------------

CASES = [
    ("tfkeras_adam", "tf_keras Dense(6, relu)+Dense(3) on 8 inputs, legacy Adam(0.01), SCCE from logits, "
     "1 epoch (2 steps of 8), model.save h5 + save_weights",
     lambda n, d: run_tfkeras_trained(n, d, tk_dense, lambda: tf_keras.optimizers.legacy.Adam(learning_rate=0.01),
                                      float_data)),
    ("tfkeras_sgd_momentum", "as tfkeras_adam with legacy SGD(0.05, momentum=0.9, nesterov=True)",
     lambda n, d: run_tfkeras_trained(
         n, d, tk_dense, lambda: tf_keras.optimizers.legacy.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
         float_data)),
    ("tfkeras_embedding", "tf_keras int32 Input(5), Embedding(20, 4), Flatten, Dense(3), legacy Adam(0.01) "
     "(sparse IndexedSlices gradient for the embedding)",
     lambda n, d: run_tfkeras_trained(n, d, tk_embedding,
                                      lambda: tf_keras.optimizers.legacy.Adam(learning_rate=0.01), index_data)),
    ("tfkeras_dropout_nocompile", "tf_keras Dense(6, relu), Dropout(0.5), Dense(3), never trained; saved "
     "uncompiled with include_optimizer=False, and compiled (legacy Adam) with include_optimizer=False",
     run_tfkeras_dropout),
    ("keras3_adam", "Keras 3 (TF backend) Dense(6, relu)+Dense(3), keras.optimizers.Adam(0.01), SCCE from logits, "
     "1 epoch (2 steps of 8), model.save .keras + save_weights .weights.h5", run_keras3_trained),
    ("keras3_adamw_ema", "Keras 3 Dense(6, relu)+Dense(3), keras.optimizers.AdamW(0.01, weight_decay=0.05, "
     "use_ema=True, ema_momentum=0.9), 1 epoch (2 steps of 8; fit ends by replacing the weights with their EMA), "
     "model.save .keras", lambda n, d: run_keras3_trained(n, d, lambda: keras.optimizers.AdamW(
         learning_rate=0.01, weight_decay=0.05, use_ema=True, ema_momentum=0.9))),
    ("keras3_lion", "Keras 3 Dense(6, relu)+Dense(3), keras.optimizers.Lion(0.001), 1 epoch, model.save .keras",
     lambda n, d: run_keras3_trained(n, d, lambda: keras.optimizers.Lion(learning_rate=0.001))),
    ("keras3_loss_scale_adam", "Keras 3 Dense(6, relu)+Dense(3), keras.optimizers.LossScaleOptimizer(Adam(0.01), "
     "initial_scale=64, dynamic_growth_steps=2), 1 epoch (the scale doubles after 2 steps), model.save .keras",
     lambda n, d: run_keras3_trained(n, d, lambda: keras.optimizers.LossScaleOptimizer(
         keras.optimizers.Adam(learning_rate=0.01), initial_scale=64.0, dynamic_growth_steps=2))),
    ("keras3_dropout_nocompile", "Keras 3 Dense(6, relu), Dropout(0.5), Dense(3), never compiled nor trained",
     run_keras3_dropout),
]


def layouts_markdown(cases):
    out = ["# Layouts of the Keras files in this folder", "",
           "Written by `scripts/golden/generate_keras_files.py` (tf_keras 2.21.0, Keras 3.15.1, h5py "
           f"{h5py.__version__} / HDF5 {h5py.version.hdf5_version}); read back with h5py's low-level API "
           "(`h5py.h5a`, `get_type()`, `get_space()`). Objects are listed in h5py's visit order (name order; "
           "every group here is an old-style symbol-table group, whose links are stored sorted by name). "
           "Attributes are listed in native (storage) order, which is the order Keras created them. "
           "Types: `string vlen UTF-8 NULLTERM` = variable-length string, charset UTF-8; `scalar` = scalar "
           "dataspace, `simple[n]` = 1-D simple dataspace of n elements. Long JSON values are in the case JSON "
           "(`model_config`, `training_config`, `config_json`). See `NOTES` at the end for what matters to a writer.",
           ""]
    for name, fx in cases:
        for role, fname in fx["files"].items():
            path = os.path.join(OUT_DIR, fname)
            out.append(f"## `{fname}` ({name}, {role}; {os.path.getsize(path)} bytes)")
            out.append("")
            if fname.endswith(".keras"):
                z = kfl.describe_zip(path)
                out.append("Zip members in stored order (archive comment "
                           f"{json.dumps(z['archive_comment'])}):")
                out.append("")
                out.append("| # | name | method | size | compressed | date_time | flags | create_system/version | "
                           "extract_version | external_attr>>16 | extra | header_offset |")
                out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
                for i, m in enumerate(z["members"]):
                    out.append(f"| {i} | `{m['name']}` | {m['compress_type']} | {m['file_size']} | "
                               f"{m['compress_size']} | {tuple(m['date_time'])} | {m['flag_bits']} | "
                               f"{m['create_system']}/{m['create_version']} | {m['extract_version']} | "
                               f"{m['external_attr']} | `{m['extra']}` | {m['header_offset']} |")
                out.append("")
                out.append(f"`metadata.json`: `{z['json']['metadata.json']}`")
                out.append("")
                out.append("`model.weights.h5` inside the zip:")
                out.append("")
                out.extend(kfl.render_h5(z["weights"]))
            else:
                out.extend(kfl.render_h5(kfl.describe_h5(path), long_values=("model_config", "training_config")))
            out.append("")
    return out


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for pattern in ("*.json", "*.h5", "*.keras", "*.md"):
        for old in glob.glob(os.path.join(OUT_DIR, pattern)):
            os.remove(old)
    total = 0
    done = []
    for name, description, run in CASES:
        fx = run(name, description)
        total += write_json(os.path.join(OUT_DIR, name + ".json"), json_safe(fx))
        for fname in fx["files"].values():
            size = os.path.getsize(os.path.join(OUT_DIR, fname))
            assert size < MAX_FILE_BYTES, (fname, size)
        done.append((name, fx))
    total += write_json(os.path.join(OUT_DIR, "INDEX.json"),
                        dict(versions(), cases=[n for n, _ in done],
                             files={n: fx["files"] for n, fx in done}))
    with open(os.path.join(OUT_DIR, "LAYOUTS.md"), "w") as f:
        f.write("\n".join(layouts_markdown(done)) + "\n" + NOTES)
    print(f"wrote {len(done)} cases ({total} bytes of JSON) to {OUT_DIR}")


NOTES = """## NOTES (what matters to a writer)

Checked on the files above; regenerate and re-read the tables before relying on a detail.

**Whole file (every .h5 here, tf_keras and Keras 3 alike).** Superblock version 0, 8-byte offsets and lengths,
no userblock (h5py's default libver bounds `('earliest', 'v114')`, which is also libhdf5's C default). All object
headers are version 1 (no `OHDR` signature in any file). Every group is an old-style symbol-table group (one v1
B-tree `TREE` + one local heap `HEAP` per group, `SNOD` nodes; links sorted by name); no group or object tracks
link or attribute creation order. All variable-length strings live in one global heap collection (`GCOL`).
Datasets are contiguous, unfiltered, little-endian (`<f4` weights, `<i8` iteration counts); a scalar weight has
a **scalar** dataspace, every other weight a simple one. h5py writes these files byte-identically on every run.

**String attributes are all variable-length, NULLTERM, and never fixed-length**, but the charset differs:
- tf_keras `model.save` root: `keras_version` and `backend` are **UTF-8** (Python `str`), `model_config` and
  `training_config` are **ASCII** (tf_keras stores `json.dumps(...).encode("utf8")` bytes). All four are scalar.
  Storage order: `keras_version`, `backend`, `model_config`, `training_config`.
- `/model_weights` (and the root of a tf_keras `save_weights` file): `layer_names` (vlen ASCII, simple[n]),
  then `backend`, `keras_version` (vlen ASCII, scalar) — ASCII here, unlike the model file's root.
- each layer group: `weight_names` (vlen ASCII simple[n], e.g. `["dense/kernel:0", "dense/bias:0"]`);
  **a layer without weights** (Flatten, Dropout) and the always-present `top_level_model_weights` group
  get `weight_names` = an **empty float64 array** (simple dataspace of 0 elements; `np.asarray([])`).
- `/optimizer_weights`: `weight_names` vlen ASCII simple[n] in `optimizer.weights` order.
- Keras 3: each `vars` group has `name` (vlen **UTF-8**, scalar); the root group has no attributes.
- tf_keras splits an attribute bigger than 64512 bytes into `<name>0`, `<name>1`, ... (not reached here; its
  reader accepts both forms).

**tf_keras iteration count**: `/optimizer_weights/<Opt>/iter:0` is an **int64 scalar** dataset. The slot datasets
sit at `/optimizer_weights/<Opt>/<layer>/<var>/<slot>:0` (float32, the variable's shape), under intermediate
groups without attributes. Weight datasets sit at `/model_weights/<layer>/<layer>/<var>:0`.

**How tf_keras restores the optimizer (`load_model`)**: it compiles from `training_config`, calls
`optimizer._create_all_weights(model.trainable_variables)` and then `optimizer.set_weights(values)` with the
datasets listed in `weight_names`, **positionally**: the names in the file are never compared with the
optimizer's. A count or shape mismatch only logs "Error in loading the saved optimizer state" and leaves a
fresh optimizer (no exception). The restored weights are named **without** the optimizer prefix (`iter:0`,
`dense/kernel/m:0`; field `optimizer_weight_names_after_load`), because `_create_all_weights` runs outside the
optimizer's name scope; a trained model (and the file) says `Adam/iter:0`, `Adam/dense/kernel/m:0`. Re-saving a
loaded model therefore writes `/optimizer_weights/iter:0` etc.

**`include_optimizer=False`** (uncompiled, or compiled): the root has only `keras_version`, `backend`,
`model_config` (no `training_config`) and there is no `/optimizer_weights`; both files are identical.
`load_model` then returns an uncompiled model (optimizer `None`).

**Configs.** tf_keras `model_config`: `{"class_name": "Sequential", "config": {"name", "layers": [...]}}` whose first
layer is `InputLayer` with `batch_input_shape` and `name` `"input_1"` (plus `dtype`, `sparse`, `ragged`,
`optional`); Dropout is `{"name", "trainable", "dtype", "rate", "noise_shape", "seed"}`. `training_config` keys:
`loss`, `metrics` (`[[{"class_name": "MeanMetricWrapper", ...}]]`), `weighted_metrics`, `loss_weights`,
`optimizer_config` (`{"class_name", "config"}`, float32-rounded hypers). Keras 3 `config.json`: InputLayer has
`batch_shape`, `name` `"input_layer"`, `optional`; Dropout `{"name", "trainable", "dtype", "rate", "seed",
"noise_shape"}`; layers that share the global `DTypePolicy` carry `"shared_object_id"` (Python's `id()`, pinned
to 2 here; Keras accepts any integer and the key can be left out); `compile_config` is `{}` when uncompiled.

**Keras 3 weights file** (`model.weights.h5` in the zip and `save_weights`): `/layers/<layer>/vars/<i>` per layer
(a Dropout still gets an empty `/layers/dropout/vars` group with its `name`), `/vars` (name `"sequential"`,
empty), and when compiled `/optimizer/vars/0..n` (name `"adam"`): 0 = iteration (**int64 scalar** under the TF
backend), 1 = learning_rate (float32 scalar), then per trainable variable its slots (Adam: momentum, velocity).
No `/optimizer` group when uncompiled. After loading, Keras 3 names the slots `adam/dense_kernel_momentum`
(the trained model said `adam/sequential_dense_kernel_momentum`); the file stores indices only. The zip's
`model.weights.h5` and the separate `.weights.h5` hold the same objects but differ in size (in-memory vs disk
file; both written by h5py).

**.keras zip**: three members in this order: `metadata.json`, `config.json`, `model.weights.h5`; all **STORED**
(method 0, no compression), no data descriptors (flag bits 0), no extra fields, no comments, no zip64, no
`assets/` entry, create system 3 (Unix), version 20, external attributes `0o600 << 16`. The two JSON members
have the DOS date 1980-01-01 00:00:00 (Keras opens them with `zf.open(name, "w")`); `model.weights.h5` gets the
current local time (`writestr`; pinned to 2026-01-01 here). `metadata.json` is `{"keras_version": "3.15.1",
"date_saved": "YYYY-MM-DD@HH:MM:SS"}`; both JSON texts use Python's default separators.
"""

if __name__ == "__main__":
    main()
