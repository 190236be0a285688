"""What tf_keras 2.21's `TensorBoard` callback writes, as a structural fixture for Descent's callback.

Runs a tiny tf_keras model with `tf_keras.callbacks.TensorBoard` in a few configurations and records, for
every event file it wrote (`train/`, `validation/`), every event in order: its step, `file_version`, and
each summary value's tag, plugin name, plugin content (hex), dtype, shape and values. Wall times, file
names and the weights' values are left out (they differ from run to run); the record framing is checked
here (length, masked crc32c of the length and of the data) and its facts recorded.

Writes `Tests/Fixtures/tensorboard/tf_keras_reference.json` (the Swift test
`TensorBoardCallbackTests` compares Descent's tags, steps, plugin names, dtypes and shapes with it, and
`HistogramTests` tensorboard's histogram buckets of a few arrays), two of the event files themselves
(`tf_keras_epoch_validation.tfevents`, `tf_keras_batch_histograms_train.tfevents`, for the byte-level
tests), and, with `--keep DIR`, leaves the log folders in DIR (for `scripts/check_tensorboard_events.py`).

TF 2.21 no longer depends on `tensorboard`, but `tf.summary.scalar`/`histogram` import it. So this runs
with the TF venv's python and appends a venv with `tensorboard==2.21.0` to `sys.path` (appended, so the
TF venv's own numpy and protobuf win):

    python3 -m venv /work/venv-tb && /work/venv-tb/bin/pip install tensorboard==2.21.0
    TENSORBOARD_SITE=/work/venv-tb/lib/python3.11/site-packages \\
        /work/venv-tf/bin/python scripts/golden/generate_tensorboard_reference.py [--keep DIR]
"""

import glob
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from golden_common import FIXTURES, write_json  # noqa: E402  (quiets TF's logging first)

_site = os.environ.get("TENSORBOARD_SITE") or glob.glob("/work/venv-tb/lib/python3*/site-packages")[0]
sys.path.append(_site)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402
from tensorboard.compat.proto import types_pb2  # noqa: E402

# crc32c (Castagnoli), bitwise: slow but obviously right, for a check of the framing.
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    """The records' data, checking each record's framing."""
    data = open(path, "rb").read()
    out, pos = [], 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert len_crc == masked(crc32c(header)), (path, pos)
        payload = data[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert data_crc == masked(crc32c(payload)), (path, pos)
        out.append(payload)
        pos += 16 + length
    assert pos == len(data)
    return out


def tensor_values(t):
    arr = tf.make_ndarray(t)
    if arr.dtype.kind in "SUO":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in arr.reshape(-1)]
    return [float(v) for v in arr.reshape(-1)]


def describe_event(ev, with_values):
    d = {"step": int(ev.step)}
    which = ev.WhichOneof("what")
    if which == "file_version":
        d["file_version"] = ev.file_version
    elif which == "summary":
        values = []
        for v in ev.summary.value:
            vd = {"tag": v.tag, "plugin_name": v.metadata.plugin_data.plugin_name,
                  "plugin_content_hex": v.metadata.plugin_data.content.hex(),
                  "kind": v.WhichOneof("value")}
            if v.WhichOneof("value") == "tensor":
                vd["dtype"] = types_pb2.DataType.Name(v.tensor.dtype)
                vd["shape"] = [int(dim.size) for dim in v.tensor.tensor_shape.dim]
                vd["uses_tensor_content"] = bool(v.tensor.tensor_content)
                if vd["dtype"] != "DT_STRING" and with_values(v.tag):
                    vd["values"] = tensor_values(v.tensor)
            values.append(vd)
        d["values"] = values
        if all(v["plugin_name"] == "scalars" for v in values):
            # The exact bytes of the summary (the event's other fields are the wall time and the step).
            d["summary_hex"] = ev.summary.SerializeToString().hex()
    else:
        d["other"] = which
    return d


def make_model():
    tf_keras.utils.set_random_seed(7)
    model = tf_keras.Sequential([
        tf_keras.Input(shape=(4,)),
        tf_keras.layers.Dense(3, activation="relu", name="dense"),
        tf_keras.layers.Dense(2, activation="softmax", name="dense_1"),
    ])
    return model


CASES = {
    # The defaults: epoch scalars only, a model graph ("keras" summary) at step 0.
    "epoch": dict(callback=dict(), fit=dict(verbose=0)),
    # Histograms every epoch, batch scalars every batch; verbose=1, so that batch hooks run (with verbose 0
    # or 2 no callback implements them, and tf_keras writes no batch scalars at all).
    "batch_histograms": dict(callback=dict(histogram_freq=1, update_freq="batch", write_graph=False),
                             fit=dict(verbose=1)),
    # Batch scalars every 2nd step (tf_keras' train counter % 2 == 0), histograms every 2nd epoch.
    "every_2_batches": dict(callback=dict(histogram_freq=2, update_freq=2, write_graph=False),
                            fit=dict(verbose=1, epochs=3)),
    # update_freq="batch" with verbose=0: no callback implements batch hooks, so tf_keras writes no batch
    # scalars at all (a quirk Descent does not copy).
    "batch_verbose0": dict(callback=dict(update_freq="batch", write_graph=False), fit=dict(verbose=0)),
    # A learning-rate schedule: tf_keras logs `epoch_learning_rate` under train.
    "lr_schedule": dict(callback=dict(write_graph=False), fit=dict(verbose=0), schedule=True),
}


def run_case(name, spec, root):
    model = make_model()
    lr = 0.1
    if spec.get("schedule"):
        lr = tf_keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    log_dir = os.path.join(root, name)
    cb = tf_keras.callbacks.TensorBoard(log_dir=log_dir, **spec["callback"])
    fit_args = dict(epochs=2, batch_size=4, validation_split=0.25, shuffle=False)
    fit_args.update(spec["fit"])
    model.fit(x, y, callbacks=[cb], **fit_args)
    runs = {}
    for run in sorted(os.listdir(log_dir)):
        files = sorted(glob.glob(os.path.join(log_dir, run, "events.out.tfevents.*")))
        assert len(files) == 1, files
        base = os.path.basename(files[0])
        parts = base.split(".")
        records = read_records(files[0])
        events = []
        for r in records:
            ev = event_pb2.Event.FromString(r)
            # Values of scalars only (histograms depend on the random initial weights).
            events.append(describe_event(ev, with_values=lambda tag: not tag.endswith("/histogram")))
        runs[run] = {"file_name_fields": len(parts), "file_name_suffix": ".".join(parts[-2:]),
                     "record_count": len(records), "events": events}
    return {"callback": {k: v for k, v in spec["callback"].items()}, "fit": fit_args,
            "learning_rate_schedule": bool(spec.get("schedule")), "runs": runs}


def histogram_cases():
    """tensorboard 2.21's histogram buckets (`summary_v2._buckets`, float64 [k, 3] of (left, right, count))
    of float32 data, as `tf.summary.histogram` computes them for a weight."""
    from tensorboard.plugins.histogram import summary_v2 as histogram_v2
    rng = np.random.default_rng(1)
    cases = {
        "normal_50": rng.normal(size=50).astype("float32"),
        "uniform_7_edges": np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype="float32"),
        "repeated_with_max": np.array([-1.5, 2.0, 2.0, 2.0, 0.25, -1.5], dtype="float32"),
        "single_value": np.array([0.5, 0.5, 0.5], dtype="float32"),
        "one_element": np.array([3.0], dtype="float32"),
        "glorot_3x2": rng.uniform(-1, 1, size=6).astype("float32"),
    }
    out = {}
    for name, data in cases.items():
        for buckets in (30, 4):
            k = histogram_v2._buckets(tf.constant(data), tf.constant(buckets))
            out[f"{name}_{buckets}"] = {"data": [float(v) for v in data], "buckets": buckets,
                                        "histogram": [[float(v) for v in row] for row in k.numpy()]}
    return out


def main():
    keep = None
    if "--keep" in sys.argv:
        keep = sys.argv[sys.argv.index("--keep") + 1]
    root = keep or tempfile.mkdtemp(prefix="tf_keras_tensorboard_")
    os.makedirs(root, exist_ok=True)
    cases = {name: run_case(name, spec, root) for name, spec in CASES.items()}
    out = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
           "model": "Input(4) -> Dense(3, relu, name=dense) -> Dense(2, softmax, name=dense_1); SGD; "
                    "sparse_categorical_crossentropy; metrics=[accuracy]; 16 samples, batch 4, "
                    "validation_split 0.25 (3 train batches per epoch), shuffle=False",
           "cases": cases, "histograms": histogram_cases()}
    path = os.path.join(FIXTURES, "tensorboard", "tf_keras_reference.json")
    size = write_json(path, out)
    print(f"wrote {path} ({size} bytes); logs in {root}")
    # Two real event files, for the byte-level tests of the framing and the Event encoding.
    for case, run, fixture in (("epoch", "validation", "tf_keras_epoch_validation.tfevents"),
                               ("batch_histograms", "train", "tf_keras_batch_histograms_train.tfevents")):
        (src,) = glob.glob(os.path.join(root, case, run, "events.out.tfevents.*"))
        dst = os.path.join(FIXTURES, "tensorboard", fixture)
        shutil.copyfile(src, dst)
        print(f"wrote {dst} ({os.path.getsize(dst)} bytes)")


if __name__ == "__main__":
    main()
