#!/usr/bin/env python3
"""Peers of `descent bench checkpoint`: save and load of the same model with Adam's state.

    /work/venv-torch/bin/python bench/peers/checkpoint_peers.py torch [--width 4096 --layers 3]
    /work/venv-tf/bin/python    bench/peers/checkpoint_peers.py tf_keras

The model: `layers` Linear/Dense layers of width x width (50.3M parameters by default), Adam after one
step (so its state exists): 600 MB of weights and slots.
- torch: `torch.save({"model": state_dict, "optimizer": state_dict}, path)` followed by an fsync (torch.save
  does not sync; without it the number is the page cache's, not the disk's), and `torch.load`.
- tf_keras 2.21: `model.save("m.h5")` (HDF5 with the legacy optimizer's state, as Descent's .h5) and
  `tf_keras.models.load_model`; `save_weights`/`load_weights` of the weights alone.
Prints one JSON line per operation: {"bench": "checkpoint", "peer", "op", "format", "bytes", "median_s",
"gb_per_s", "peak_extra_bytes"}; peak extra memory from VmHWM (reset through /proc/self/clear_refs).
"""
import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def memory():
    rss = peak = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return rss, peak


def measure(body, repeats):
    times, extra = [], 0
    for _ in range(repeats):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        before = memory()[0]
        start = time.perf_counter()
        result = body()
        times.append(time.perf_counter() - start)
        extra = max(extra, memory()[1] - before)
        del result
    times.sort()
    return times[len(times) // 2], extra


def emit(peer, op, fmt, nbytes, result):
    seconds, extra = result
    print(json.dumps({"bench": "checkpoint", "peer": peer, "op": op, "format": fmt, "bytes": nbytes,
                      "median_s": seconds, "gb_per_s": nbytes / seconds / 1e9, "peak_extra_bytes": extra}), flush=True)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_torch(args, folder):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(args.width, args.width) for _ in range(args.layers)])
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, args.width)).sum().backward()
    opt.step()
    path = os.path.join(folder, "torch-ckpt.pt")

    def save():
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
        fsync_path(path)

    save()
    nbytes = os.path.getsize(path)
    emit("torch", "save", "torch.save", nbytes, measure(save, args.repeats))
    emit("torch", "load", "torch.load", nbytes, measure(lambda: torch.load(path, weights_only=True), args.repeats))

    def restore():
        state = torch.load(path, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])

    emit("torch", "restore", "torch.load", nbytes, measure(restore, args.repeats))
    os.unlink(path)


def run_tf_keras(args, folder):
    import numpy as np
    import tf_keras
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input(shape=(args.width,))]
                                + [tf_keras.layers.Dense(args.width) for _ in range(args.layers)])
    model.compile(optimizer=tf_keras.optimizers.legacy.Adam(), loss="mse")
    x = np.random.default_rng(0).standard_normal((2, args.width)).astype("float32")
    model.train_on_batch(x, x[:, : args.width])
    path = os.path.join(folder, "tfkeras-ckpt.h5")
    model.save(path)
    nbytes = os.path.getsize(path)

    def save():
        model.save(path)
        fsync_path(path)

    emit("tf_keras", "save", "h5", nbytes, measure(save, args.repeats))
    emit("tf_keras", "load", "h5", nbytes, measure(lambda: tf_keras.models.load_model(path), args.repeats))
    weights = os.path.join(folder, "tfkeras-weights.h5")
    model.save_weights(weights)
    wbytes = os.path.getsize(weights)

    def save_weights():
        model.save_weights(weights)
        fsync_path(weights)

    emit("tf_keras", "save", "save_weights.h5", wbytes, measure(save_weights, args.repeats))
    emit("tf_keras", "load", "load_weights.h5", wbytes, measure(lambda: model.load_weights(weights), args.repeats))
    os.unlink(path)
    os.unlink(weights)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("peer", choices=["torch", "tf_keras"])
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folder", default=tempfile.gettempdir())
    args = ap.parse_args()
    (run_torch if args.peer == "torch" else run_tf_keras)(args, args.folder)


if __name__ == "__main__":
    main()
