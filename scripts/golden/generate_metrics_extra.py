#!/usr/bin/env python3
"""Generate golden values for the confusion-matrix metrics (Precision, Recall, AUC) and the top-k
accuracies (TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy) with real TensorFlow + tf_keras.

Every case builds a fresh tf_keras metric from its constructor arguments, feeds it a few batches
(`update_state(y_true, y_pred, sample_weight)`), and records after each batch `result()` (a number, or
a list for a Precision/Recall with several thresholds), and after the last step the whole state
(omitted when longer than 64 numbers, except for one 200-threshold AUC): the metric's variables in
order, flattened row-major and concatenated (Precision: true_positives, false_positives; Recall:
true_positives, false_negatives; AUC: true_positives, true_negatives, false_positives, false_negatives;
the top-k accuracies: total, count). A step `{"reset": true}` is `reset_state()`. Each case also holds
`class_name` and `get_config()` (numpy values as lists).

Output: Tests/Fixtures/metrics_extra/confusion_metrics.json, Tests/Fixtures/metrics_extra/top_k_accuracy.json

Usage:  /work/venv-tf/bin/python scripts/golden/generate_metrics_extra.py
"""

import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, json_safe, write_json  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

M = tf_keras.metrics
OUT_DIR = os.path.join(FIXTURES, "metrics_extra")


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def tensor_json(a):
    a = np.asarray(a)
    dtype = {np.dtype("float32"): "float32", np.dtype("float64"): "float64",
             np.dtype("int64"): "int64"}[a.dtype]
    return {"shape": list(a.shape), "dtype": dtype, "values": a.reshape(-1).tolist()}


def f32(a):
    return np.asarray(a, dtype=np.float32)


# --------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------

def binary_batch(rng, n, edges=False, cols=None):
    """Binary labels and probabilities; `edges` puts exact 0, 0.5, 1 (and values outside [0, 1])."""
    shape = (n,) if cols is None else (n, cols)
    y_true = f32(rng.integers(0, 2, size=shape))
    y_pred = f32(rng.uniform(0, 1, size=shape))
    if edges:
        flat = y_pred.reshape(-1)
        specials = [0.0, 0.5, 1.0, 0.25, 0.75, 1.2, -0.1]
        # Distinct positions, spread over the batch.
        for i, v in enumerate(specials[: flat.size]):
            flat[i * (flat.size // min(len(specials), flat.size))] = v
    return y_true, y_pred


def multi_hot_batch(rng, n, c, ties=False):
    y_true = f32(rng.integers(0, 2, size=(n, c)))
    y_pred = f32(rng.uniform(0, 1, size=(n, c)))
    if ties:
        # Rounded to one decimal: many ties within a row, straddling the top-k boundary.
        y_pred = f32(np.round(y_pred * 5) / 5)
    return y_true, y_pred


CASES = []


def case(name, class_name, kwargs, steps, description=""):
    assert name not in {c["case"] for c in CASES}, name
    CASES.append({"case": name, "class_name": class_name, "kwargs": kwargs, "steps": steps,
                  "description": description})


def state_of(metric):
    return np.concatenate([np.asarray(v.numpy(), dtype=np.float64).reshape(-1) for v in metric.variables]).tolist()


def run(c):
    cls = getattr(M, c["class_name"])
    metric = cls(**c["kwargs"])
    steps = []
    for s in c["steps"]:
        if s == "reset":
            metric.reset_state()
            steps.append({"reset": True, "result": json_safe(np.asarray(metric.result().numpy(), np.float64)),
                          "state": state_of(metric)})
            continue
        y_true, y_pred, w = s
        if w is None:
            metric.update_state(tf.constant(y_true), tf.constant(y_pred))
        else:
            metric.update_state(tf.constant(y_true), tf.constant(y_pred), sample_weight=tf.constant(w))
        result = np.asarray(metric.result().numpy(), dtype=np.float64)
        steps.append({"y_true": tensor_json(y_true), "y_pred": tensor_json(y_pred),
                      "sample_weight": None if w is None else tensor_json(w),
                      "result": json_safe(result), "state": state_of(metric)})
    # The state after the last step only, and only when it is small (the 200-threshold AUCs keep one).
    for s in steps[:-1]:
        del s["state"]
    if len(steps[-1]["state"]) > 64 and c["case"] != "auc_roc_default":
        del steps[-1]["state"]
    config = json_safe(metric.get_config())
    return {"case": c["case"], "description": c["description"], "class_name": c["class_name"],
            "config": config, "steps": steps}


# --------------------------------------------------------------------------
# Precision / Recall
# --------------------------------------------------------------------------

def pr_cases(cls, short):
    r = rng_for(short + "default")
    b = [binary_batch(r, 9, edges=True), binary_batch(r, 7), binary_batch(r, 6)]
    case(f"{short}_default", cls, {"name": short},
         [(b[0][0], b[0][1], None), (b[1][0], b[1][1], f32(r.uniform(0, 2, 7))), "reset", (b[2][0], b[2][1], None)],
         "default threshold 0.5; predictions of exactly 0.5 are negative; a per-sample weight; a reset")

    r = rng_for(short + "thresholds")
    b = [binary_batch(r, 8, edges=True, cols=1), binary_batch(r, 10, cols=1)]
    case(f"{short}_thresholds", cls, {"name": short, "thresholds": [0.3, 0.5, 0.8]},
         [(b[0][0], b[0][1], f32(r.uniform(0, 1, (8, 1)))), (b[1][0].reshape(-1), b[1][1], None)],
         "three uneven thresholds; [N, 1] weights; [N] labels against [N, 1] predictions")

    r = rng_for(short + "even")
    b = [binary_batch(r, 12, edges=True), binary_batch(r, 10, edges=True)]
    case(f"{short}_even_thresholds", cls, {"name": short, "thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]},
         [(b[0][0], b[0][1], None), (b[1][0], b[1][1], f32(r.uniform(0, 1, 10)))],
         "evenly spaced thresholds (Keras' bucketed path): predictions clipped to [0, 1], exact edges")

    r = rng_for(short + "scalar")
    b = [binary_batch(r, 6, cols=3), binary_batch(r, 5, cols=3)]
    case(f"{short}_scalar_threshold", cls, {"name": short, "thresholds": 0.4},
         [(b[0][0], b[0][1], f32(r.uniform(0, 1, (6, 3)))), (b[1][0], b[1][1], np.float32(0.5))],
         "a scalar threshold (the config keeps the scalar); [N, 3] flattened; element weights; scalar weight")

    r = rng_for(short + "topk")
    b = [multi_hot_batch(r, 6, 5, ties=True), multi_hot_batch(r, 7, 5)]
    case(f"{short}_top_k", cls, {"name": short, "top_k": 2},
         [(b[0][0], b[0][1], None), (b[1][0], b[1][1], f32(r.uniform(0, 1, 7)))],
         "top_k=2 over 5 classes, ties in the first batch (lower indices win)")

    r = rng_for(short + "topkthr")
    b = [multi_hot_batch(r, 6, 4, ties=True), multi_hot_batch(r, 5, 4)]
    case(f"{short}_top_k_thresholds", cls, {"name": short, "top_k": 3, "thresholds": [0.3, 0.6]},
         [(b[0][0], b[0][1], None), (b[1][0], b[1][1], None)],
         "top_k=3 and two thresholds")

    r = rng_for(short + "classid")
    b = [multi_hot_batch(r, 8, 4), multi_hot_batch(r, 6, 4)]
    case(f"{short}_class_id", cls, {"name": short, "class_id": 2},
         [(b[0][0], b[0][1], f32(r.uniform(0, 1, 8))), (b[1][0], b[1][1], None)],
         "class_id=2 of 4")

    r = rng_for(short + "topkclass")
    b = [multi_hot_batch(r, 8, 5, ties=True), multi_hot_batch(r, 9, 5)]
    case(f"{short}_top_k_class_id", cls, {"name": short, "top_k": 2, "class_id": 1},
         [(b[0][0], b[0][1], f32(r.uniform(0, 1, (8, 1)))), (b[1][0], b[1][1], None)],
         "top_k=2 with class_id=1, [N, 1] weights")

    r = rng_for(short + "int")
    yt = r.integers(0, 2, size=(8, 1)).astype(np.int64)
    case(f"{short}_int_labels", cls, {"name": short},
         [(yt, f32(r.uniform(0, 1, 8)), None), (yt * 3, f32(r.uniform(0, 1, (8, 1))), None)],
         "int64 [N, 1] labels against [N] predictions; labels of 3 count as true")


pr_cases("Precision", "precision")
pr_cases("Recall", "recall")

# --------------------------------------------------------------------------
# AUC
# --------------------------------------------------------------------------


def auc_case(name, kwargs, batches, description):
    r = rng_for("auc" + name)
    steps = []
    for spec in batches:
        if spec == "reset":
            steps.append("reset")
            continue
        n, cols, weighted, edges = spec
        y_true, y_pred = binary_batch(r, n, edges=edges, cols=cols)
        if kwargs.get("from_logits"):
            y_pred = f32(r.normal(0, 2, size=y_pred.shape))
        w = None
        if weighted == "sample":
            w = f32(r.uniform(0, 2, n))
        elif weighted == "element":
            w = f32(r.uniform(0, 2, y_pred.shape))
        steps.append((y_true, y_pred, w))
    case(name, "AUC", dict(name="auc", **kwargs), steps, description)


STD = [(20, None, None, True), (15, None, "sample", False), (12, None, None, False)]
auc_case("auc_roc_default", {}, STD + ["reset", (10, None, None, False)], "ROC, 200 thresholds, interpolation")
auc_case("auc_roc_minoring", {"summation_method": "minoring"}, STD, "ROC minoring")
auc_case("auc_roc_majoring", {"summation_method": "majoring"}, STD, "ROC majoring")
auc_case("auc_pr_interpolation", {"curve": "PR"}, STD, "PR, Davis & Goadrich interpolation")
auc_case("auc_pr_minoring", {"curve": "PR", "summation_method": "minoring"}, STD, "PR minoring")
auc_case("auc_pr_majoring", {"curve": "PR", "summation_method": "majoring"}, STD, "PR majoring")
auc_case("auc_pr_gain", {"curve": "PR_GAIN"}, STD, "PR gain")
auc_case("auc_small_num_thresholds", {"num_thresholds": 3}, STD, "3 thresholds: -eps, 0.5, 1+eps")
auc_case("auc_pr_small_num_thresholds", {"num_thresholds": 10, "curve": "PR"}, STD, "PR, 10 thresholds")
auc_case("auc_uneven_thresholds", {"thresholds": [0.7, 0.1, 0.4]}, STD,
         "explicit uneven thresholds (sorted by Keras), the direct comparison path")
auc_case("auc_pr_uneven_thresholds", {"thresholds": [0.1, 0.4, 0.75], "curve": "PR"}, STD, "PR, uneven thresholds")
auc_case("auc_even_thresholds", {"thresholds": [0.25, 0.5, 0.75]}, STD,
         "explicit evenly spaced thresholds: the bucketed path with epsilon endpoints")
auc_case("auc_rank2_flattened", {}, [(8, 3, "sample", True), (6, 3, "element", False)],
         "[N, 3] predictions flattened (multi_label=False), per-sample and element weights")
auc_case("auc_from_logits", {"from_logits": True}, STD, "from_logits: a sigmoid first")
auc_case("auc_multi_label", {"multi_label": True}, [(10, 3, None, True), (8, 3, "sample", False)],
         "multi_label ROC, the labels' mean; built from the first batch")
auc_case("auc_multi_label_pr", {"multi_label": True, "curve": "PR", "num_labels": 3},
         [(10, 3, None, True), (8, 3, "sample", False)], "multi_label PR interpolation, num_labels given")
auc_case("auc_multi_label_weights", {"multi_label": True, "label_weights": [1.0, 2.0, 0.5]},
         [(10, 3, None, False), (8, 3, "element", False)], "multi_label ROC weighted by label_weights")
auc_case("auc_multi_label_pr_weights", {"multi_label": True, "curve": "PR", "label_weights": [0.3, 0.0, 1.7]},
         [(10, 3, None, False), (8, 3, "sample", False)], "multi_label PR weighted by label_weights")
auc_case("auc_multi_label_uneven", {"multi_label": True, "thresholds": [0.2, 0.45, 0.9], "summation_method": "majoring"},
         [(10, 3, "sample", True), (8, 3, None, False)], "multi_label on the direct comparison path")
auc_case("auc_label_weights", {"label_weights": [1.0, 3.0, 0.5]}, [(10, 3, None, False), (8, 3, "sample", False)],
         "label_weights without multi_label: weights every element of a label")
auc_case("auc_label_weights_uneven", {"label_weights": [2.0, 0.5], "thresholds": [0.3, 0.6], "curve": "PR"},
         [(10, 2, "sample", False), (6, 2, None, False)], "label_weights on the direct path")


def one_class(name, kwargs, label):
    r = rng_for("auc" + name)
    steps = [(f32(np.full(8, label)), f32(r.uniform(0, 1, 8)), None)]
    case(name, "AUC", dict(name="auc", **kwargs), steps, "one class only: the divide_no_nan paths")


one_class("auc_only_negatives_roc", {}, 0.0)
one_class("auc_only_negatives_pr", {"curve": "PR"}, 0.0)
one_class("auc_only_positives_roc", {}, 1.0)
one_class("auc_only_positives_pr_minoring", {"curve": "PR", "summation_method": "minoring"}, 1.0)

# --------------------------------------------------------------------------
# Top-k accuracies
# --------------------------------------------------------------------------

TOPK = []


def topk_case(name, class_name, kwargs, steps, description):
    TOPK.append({"case": name, "class_name": class_name, "kwargs": kwargs, "steps": steps,
                 "description": description})


def one_hot(labels, c):
    return f32(np.eye(c)[labels])


r = rng_for("topk")
topk_case("top_k_default", "TopKCategoricalAccuracy", {},
          [(one_hot(r.integers(0, 8, 10), 8), f32(r.uniform(0, 1, (10, 8))), None),
           (one_hot(r.integers(0, 8, 6), 8), f32(r.uniform(0, 1, (6, 8))), f32(r.uniform(0, 2, 6)))],
          "k=5 of 8 classes")
ties = f32([[0.2, 0.2, 0.2, 0.1], [0.3, 0.1, 0.3, 0.3], [0.5, 0.4, 0.4, 0.4], [0.1, 0.1, 0.1, 0.1],
            [0.9, 0.0, 0.0, 0.0], [0.0, 0.0, 0.6, 0.7]])
topk_case("top_k_ties", "TopKCategoricalAccuracy", {"k": 2, "name": "top2"},
          [(one_hot([2, 3, 3, 0, 1, 1], 4), ties, None), "reset", (one_hot([0, 0, 2, 3, 0, 2], 4), ties, None)],
          "k=2 with ties straddling the boundary (in_top_k counts them all); all-equal rows")
y3 = r.integers(0, 5, (3, 4))
topk_case("top_k_rank3", "TopKCategoricalAccuracy", {"k": 1},
          [(one_hot(y3, 5), f32(r.uniform(0, 1, (3, 4, 5))), f32(r.uniform(0, 1, (3, 4))))],
          "k=1, [3, 4, 5] predictions, [3, 4] weights")
topk_case("sparse_top_k_default", "SparseTopKCategoricalAccuracy", {},
          [(r.integers(0, 7, 9).astype(np.int64), f32(r.uniform(0, 1, (9, 7))), None),
           (f32(r.integers(0, 7, (5, 1))), f32(r.uniform(0, 1, (5, 7))), f32(r.uniform(0, 1, 5)))],
          "k=5 of 7, int64 [N] and float [N, 1] labels")
topk_case("sparse_top_k_ties", "SparseTopKCategoricalAccuracy", {"k": 2},
          [(np.array([2, 3, 3, 0, 1, 1], np.int64), ties, None), (np.array([0, 1, 2, 3, 0, 3], np.int64), ties, None)],
          "k=2 with ties")
odd = f32([[0.1, 0.5, 0.2], [0.1, 0.5, 0.2], [0.3, 0.3, 0.3], [np.inf, 0.1, 0.2], [0.4, np.nan, 0.2],
           [0.2, 0.3, 0.1], [0.6, 0.2, 0.1]])
topk_case("sparse_top_k_odd", "SparseTopKCategoricalAccuracy", {"k": 1},
          [(np.array([1, 5, 0, 1, 0, -1, 0], np.int64), odd, None),
           (f32([1.7, 2.2, 0.0, 0.0, 0.0, 0.0, 0.0]), odd, None)],
          "labels out of range, non-finite predictions (both false), float labels truncated toward zero")
topk_case("sparse_top_k_rank3", "SparseTopKCategoricalAccuracy", {"k": 2, "name": "s"},
          [(r.integers(0, 4, (2, 3)).astype(np.int64), f32(r.uniform(0, 1, (2, 3, 4))), None)],
          "[2, 3] labels, [2, 3, 4] predictions")


def main():
    index = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__}
    total = write_json(os.path.join(OUT_DIR, "confusion_metrics.json"), dict(index, cases=[run(c) for c in CASES]))
    total += write_json(os.path.join(OUT_DIR, "top_k_accuracy.json"), dict(index, cases=[run(c) for c in TOPK]),
                        allow_nonfinite=True)
    print(f"{len(CASES)} confusion cases, {len(TOPK)} top-k cases, {total} bytes")


if __name__ == "__main__":
    main()
