#!/usr/bin/env python3
"""The digits CNN of `descent train --model cnn` (issue 13) in PyTorch eager and tf_keras `fit`.

Same model (Sources/descent/DigitsCNN.swift): Reshape(8, 8, 1) → Conv2D(32, 3, same, ReLU) →
BatchNormalization → MaxPooling2D(2) → Conv2D(64, 3, same, ReLU) → BatchNormalization → Flatten →
Dropout(0.3) → Dense(10); Adam with Keras' defaults, sparse categorical cross-entropy from logits, batch
32, the same 1437 training images (x / 16), shuffled every epoch. Timed like `descent bench train --model
cnn --epochs N`'s fit mode: whole epochs (shuffling, batching, forward, backward, update), the best epoch
after the first, reported as ms per step (45 steps per epoch). PyTorch also reports the test accuracy after
20 epochs with `--accuracy`.

Usage:  python bench/peers/cnn_peers.py --peer torch|tf [--threads 2] [--epochs 4]
Prints one JSON line per variant with the keys of `descent bench train --json`.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

BATCH = 32


def torch_run(args):
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    x, y = common.digits_train()
    x = torch.from_numpy(x).reshape(-1, 1, 8, 8)  # channels first, as PyTorch's Conv2d takes
    y = torch.from_numpy(y)
    torch.manual_seed(0)
    # Keras' BatchNormalization: momentum 0.99 (PyTorch's 0.01), epsilon 1e-3.
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.BatchNorm2d(32, eps=1e-3, momentum=0.01),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.BatchNorm2d(64, eps=1e-3, momentum=0.01),
        torch.nn.Flatten(), torch.nn.Dropout(0.3), torch.nn.Linear(64 * 16, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x.shape[0]
    steps = (n + BATCH - 1) // BATCH
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen)
        for s in range(steps):
            idx = order[s * BATCH:(s + 1) * BATCH]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    best = min(times[1:])
    out = dict(bench="train", model="cnn", layers="conv32-bn-pool-conv64-bn-dropout-dense10", batch=BATCH, mode="fit",
               threads=args.threads, ms_per_step=best * 1e3 / steps, steps_per_s=steps / best, steps_per_epoch=steps,
               ms_per_epoch=best * 1e3, framework="pytorch " + torch.__version__, variant="eager")
    print(json.dumps(out), flush=True)


def tf_run(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import tf_keras
    x, y = common.digits_train()
    L = tf_keras.layers
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([
        L.Reshape((8, 8, 1), input_shape=(64,)),
        L.Conv2D(32, 3, padding="same", activation="relu"), L.BatchNormalization(), L.MaxPooling2D(2),
        L.Conv2D(64, 3, padding="same", activation="relu"), L.BatchNormalization(),
        L.Flatten(), L.Dropout(0.3), L.Dense(10)])
    model.compile(optimizer="adam", loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    times = []

    class Timer(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0, shuffle=True, callbacks=[Timer()])
    steps = (x.shape[0] + BATCH - 1) // BATCH
    best = min(times[1:])
    out = dict(bench="train", model="cnn", layers="conv32-bn-pool-conv64-bn-dropout-dense10", batch=BATCH, mode="fit",
               threads=args.threads, ms_per_step=best * 1e3 / steps, steps_per_s=steps / best, steps_per_epoch=steps,
               ms_per_epoch=best * 1e3, framework="tf_keras " + tf_keras.__version__ + " (TF " + tf.__version__ + ")",
               variant="fit")
    print(json.dumps(out), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer", choices=["torch", "tf"], required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--epochs", type=int, default=4)
    args = p.parse_args()
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (the first is a warm-up)")
    torch_run(args) if args.peer == "torch" else tf_run(args)


if __name__ == "__main__":
    main()
