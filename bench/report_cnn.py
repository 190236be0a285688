"""The digits-CNN section of the BENCHMARKS.md report (part `cnn` of bench/run_all.py, issue 13) and its
targets. Pure formatting, like report.py (which calls it).

The rows it reads, by run_all.py tag (every round):
- cnn-descent: `descent bench train --model cnn --epochs 6 --json`: {"mode": "train_step" | "fit", "ms_per_step",
  "ms_per_epoch" (fit)}.
- cnn-torch, cnn-tf: bench/peers/cnn_peers.py --peer torch | tf: {"mode": "fit", "ms_per_step", "ms_per_epoch",
  "framework"}.
- cnn-accuracy (once): `descent train --model cnn --json --quiet`: {"test_accuracy", "seconds", ...}.
"""
from report_distributed import med

TARGET_TF = 3.0      # the epoch ≥ 3× faster than tf_keras fit
TARGET_TORCH = 2.0   # ≥ 2× faster than PyTorch eager
TARGET_ACCURACY = 0.95


def epochs(run, tag, mode="fit"):
    """Each round's ms per epoch of `tag` (fit mode), in round order."""
    return [r["ms_per_epoch"] for t, r in run.results if t == tag and r.get("mode") == mode and "ms_per_epoch" in r]


def cnn_section(run, args, w):
    """Writes the section; returns {"tf": (ratio, text), "torch": (...), "accuracy": value}."""
    w("## Digits CNN (issue 13): `descent train --model cnn`\n")
    w("The model of `Sources/descent/DigitsCNN.swift` (Reshape → Conv2D(32) → BatchNormalization → MaxPooling2D → "
      "Conv2D(64) → BatchNormalization → Flatten → Dropout(0.3) → Dense(10); 29,450 weights), Adam with Keras' "
      "defaults, batch 32, the 1437 digits training images shuffled every epoch (45 steps). Every framework runs "
      "whole epochs (shuffle, batch, forward, backward, update) with 2 threads; the best epoch after the first of "
      "6, per round; the ratios below are medians over rounds of the peer's epoch ÷ Descent's of the same round.\n")
    d, t, p = epochs(run, "cnn-descent"), epochs(run, "cnn-tf"), epochs(run, "cnn-torch")
    steps = [r["ms_per_step"] for tg, r in run.results if tg == "cnn-descent" and r.get("mode") == "train_step"]
    fw = {tag: next((r.get("framework") for tg, r in run.results if tg == tag), "") for tag in ("cnn-tf", "cnn-torch")}
    w("| framework | ms per epoch (median of rounds) | each round | ratio to Descent (median) |\n|---|---:|---|---:|")
    out = {}

    def row(name, values, key):
        if not values:
            w(f"| {name} | not measured | | |")
            return
        ratios = [v / dv for v, dv in zip(values, d)] if key else []
        r = med(ratios) if ratios else None
        if key and r is not None:
            out[key] = (r, f"{r:.2f}× (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
        w(f"| {name} | {med(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} | "
          f"{'1' if not key else (f'{r:.2f}×' if r is not None else '')} |")

    row("Descent `fit`", d, None)
    row(f"tf_keras `fit` ({fw['cnn-tf']})", t, "tf")
    row(f"PyTorch eager ({fw['cnn-torch']})", p, "torch")
    if steps:
        w(f"\nDescent's `trainStep` alone (batches sliced beforehand): {med(steps):.2f} ms per step (median of rounds).")
    acc = next((r for tg, r in run.results if tg == "cnn-accuracy"), None)
    if acc:
        out["accuracy"] = acc.get("test_accuracy")
        w(f"\n`descent train --model cnn` (20 epochs, seed 0): test accuracy {acc['test_accuracy']:.4f}, "
          f"{acc['seconds']:.2f} s in release.")
    w("")
    return out


def cnn_targets(values, target):
    values = values or {}
    for key, goal, title in [("tf", TARGET_TF, f"digits CNN epoch ≥ {TARGET_TF:g}× faster than tf_keras fit"),
                             ("torch", TARGET_TORCH, f"digits CNN epoch ≥ {TARGET_TORCH:g}× faster than PyTorch eager")]:
        v = values.get(key)
        target(title, v and v[0], goal, v[1] if v else "")
    a = values.get("accuracy")
    target(f"`descent train --model cnn` test accuracy ≥ {TARGET_ACCURACY}", a, TARGET_ACCURACY, f"{a:.4f}" if a else "")
