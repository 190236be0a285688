#!/usr/bin/env python3
"""Generate config round-trip fixtures with real tf_keras.

Each Tests/Fixtures/configs/<name>.json is
    {"python_json": <json.dumps(json_safe(serialize(obj))) exactly as Python writes it>,
     "object": <the same, parsed>}
where serialize is tf_keras.optimizers.serialize (optimizers),
tf_keras.optimizers.schedules.serialize (schedules) or
tf_keras.constraints.serialize (constraints). Tests/Fixtures/configs/INDEX.json
lists every name with its kind and the Python expression that built it.

Usage:  /work/venv-tf/bin/python scripts/golden/generate_configs.py
"""

import glob
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, json_safe, write_json  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from tf_keras.optimizers import legacy as L  # noqa: E402

S = tf_keras.optimizers.schedules
C = tf_keras.constraints

OUT_DIR = os.path.join(FIXTURES, "configs")

ENTRIES = []  # (name, kind, expression, factory)


def opt(name, expr, after_apply=False, legacy_format=False):
    """Register an optimizer config. `expr` is evaluated with L, S in scope."""
    def make():
        o = eval(expr, {"L": L, "S": S})
        if after_apply:
            v = tf.Variable([1.0, 2.0], name="var0")
            o.apply_gradients([(tf.constant([0.1, -0.2]), v)])
        return tf_keras.optimizers.serialize(o, use_legacy_format=legacy_format)
    desc = expr + ("  (serialized after one apply_gradients on a float32 var)" if after_apply else "") + \
        ("  (use_legacy_format=True)" if legacy_format else "")
    ENTRIES.append((name, "optimizer", desc, make))


def sched(name, expr, legacy_format=False):
    def make():
        return S.serialize(eval(expr, {"S": S}), use_legacy_format=legacy_format)
    ENTRIES.append((name, "schedule", expr + ("  (use_legacy_format=True)" if legacy_format else ""), make))


def constraint(name, expr):
    def make():
        return C.serialize(eval(expr, {"C": C}))
    ENTRIES.append((name, "constraint", expr, make))


# --- every optimizer with defaults ----------------------------------------------
for cls in ["SGD", "Adam", "Adagrad", "Adadelta", "Adamax", "Ftrl", "Nadam", "RMSprop"]:
    opt(f"{cls.lower()}_default", f"L.{cls}()")

# --- non-default options ------------------------------------------------------
opt("sgd_momentum_nesterov", "L.SGD(learning_rate=0.05, momentum=0.9, nesterov=True)")
opt("sgd_int_learning_rate", "L.SGD(learning_rate=1)")
opt("adam_custom", "L.Adam(learning_rate=0.002, beta_1=0.85, beta_2=0.99, epsilon=1e-8, amsgrad=True)")
opt("adam_epsilon_none", "L.Adam(epsilon=None)")
opt("adagrad_custom", "L.Adagrad(learning_rate=0.05, initial_accumulator_value=0.25, epsilon=1e-6)")
opt("adadelta_custom", "L.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6)")
opt("adamax_custom", "L.Adamax(learning_rate=0.002, beta_1=0.8, beta_2=0.95, epsilon=1e-6)")
opt("ftrl_custom", "L.Ftrl(learning_rate=0.05, learning_rate_power=-0.7, initial_accumulator_value=0.3, "
    "l1_regularization_strength=0.01, l2_regularization_strength=0.02, "
    "l2_shrinkage_regularization_strength=0.1, beta=0.5)")
opt("nadam_custom", "L.Nadam(learning_rate=0.002, beta_1=0.8, beta_2=0.99, epsilon=1e-6)")
opt("nadam_schedule_decay", "L.Nadam(schedule_decay=0.01)")
opt("nadam_decay_is_overwritten", "L.Nadam(decay=0.5)")
opt("rmsprop_custom", "L.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5, epsilon=1e-6, centered=True)")

# --- base-class kwargs ------------------------------------------------------------
opt("sgd_clipnorm", "L.SGD(learning_rate=0.1, clipnorm=1.0)")
opt("adam_clipvalue", "L.Adam(clipvalue=0.5)")
opt("rmsprop_global_clipnorm", "L.RMSprop(global_clipnorm=2.0)")
opt("adam_clipnorm_clipvalue_decay", "L.Adam(learning_rate=0.01, clipnorm=1.0, clipvalue=0.5, decay=0.01)")
opt("adagrad_global_clipnorm_clipvalue", "L.Adagrad(global_clipnorm=3, clipvalue=2)")
opt("sgd_decay", "L.SGD(learning_rate=0.1, decay=0.1)")
opt("ftrl_decay", "L.Ftrl(decay=0.25)")
opt("adam_name", "L.Adam(name='my_adam')")
opt("sgd_name_with_slash", "L.SGD(name='outer/inner')")
opt("ftrl_name_clipnorm", "L.Ftrl(name='my_ftrl', clipnorm=0.5)")

# --- `lr` instead of `learning_rate` ------------------------------------------------
opt("sgd_lr_alias", "L.SGD(lr=0.2)")
opt("adam_lr_alias", "L.Adam(lr=0.005)")
opt("rmsprop_lr_alias", "L.RMSprop(lr=0.01, momentum=0.9)")
opt("adam_lr_wins_over_learning_rate", "L.Adam(learning_rate=0.1, lr=0.3)")
opt("ftrl_lr_alias_is_ignored", "L.Ftrl(lr=0.2)")

# --- a nested schedule for each schedule class -------------------------------------
opt("sgd_sched_exponential", "L.SGD(learning_rate=S.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96))")
opt("adam_sched_exponential_staircase_named",
    "L.Adam(learning_rate=S.ExponentialDecay(0.01, 100, 0.5, staircase=True, name='my_schedule'))")
opt("sgd_sched_piecewise", "L.SGD(learning_rate=S.PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001]), "
    "momentum=0.9)")
opt("adam_sched_polynomial", "L.Adam(learning_rate=S.PolynomialDecay(0.01, 1000))")
opt("rmsprop_sched_polynomial_cycle",
    "L.RMSprop(learning_rate=S.PolynomialDecay(0.01, 500, end_learning_rate=0.001, power=2.0, cycle=True))")
opt("adamax_sched_inverse_time", "L.Adamax(learning_rate=S.InverseTimeDecay(0.01, 10, 0.5, staircase=True))")
opt("adam_sched_cosine", "L.Adam(learning_rate=S.CosineDecay(0.01, 1000, alpha=0.1))")
opt("sgd_sched_cosine_warmup",
    "L.SGD(learning_rate=S.CosineDecay(0.0, 1000, warmup_target=0.1, warmup_steps=100))")
opt("adadelta_sched_cosine_restarts",
    "L.Adadelta(learning_rate=S.CosineDecayRestarts(1.0, 100, t_mul=2.0, m_mul=0.5, alpha=0.1))")
opt("adagrad_sched_exponential", "L.Adagrad(learning_rate=S.ExponentialDecay(0.1, 10, 0.9))")
opt("ftrl_sched_inverse_time", "L.Ftrl(learning_rate=S.InverseTimeDecay(0.1, 10, 0.5))")
opt("adam_sched_with_decay_clipnorm",
    "L.Adam(learning_rate=S.ExponentialDecay(0.01, 10, 0.9), decay=0.1, clipnorm=1.0)")

# --- after the hypers were created (values are float32-rounded) -----------------------
opt("sgd_momentum_after_apply", "L.SGD(learning_rate=0.1, momentum=0.9)", after_apply=True)
opt("adam_after_apply", "L.Adam(learning_rate=0.01, clipnorm=1.0)", after_apply=True)
opt("ftrl_after_apply", "L.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01, "
    "l2_shrinkage_regularization_strength=0.1, beta=0.3)", after_apply=True)
opt("nadam_after_apply", "L.Nadam()", after_apply=True)
opt("rmsprop_after_apply", "L.RMSprop(learning_rate=0.01, momentum=0.5)", after_apply=True)
opt("adam_sched_after_apply", "L.Adam(learning_rate=S.ExponentialDecay(0.01, 10, 0.9))", after_apply=True)

# --- legacy (Keras 2.x) serialization format, for comparison --------------------------
opt("adam_default_legacy_format", "L.Adam()", legacy_format=True)
opt("sgd_sched_legacy_format",
    "L.SGD(learning_rate=S.ExponentialDecay(0.1, 1000, 0.96))", legacy_format=True)

# --- schedules alone -----------------------------------------------------------------
sched("schedule_exponential", "S.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)")
sched("schedule_exponential_staircase_named", "S.ExponentialDecay(0.1, 100, 0.5, staircase=True, name='exp')")
sched("schedule_piecewise", "S.PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001])")
sched("schedule_piecewise_int_values", "S.PiecewiseConstantDecay([10], [1, 2])")
sched("schedule_polynomial", "S.PolynomialDecay(0.1, 1000)")
sched("schedule_polynomial_cycle", "S.PolynomialDecay(0.1, 500, end_learning_rate=0.01, power=2.0, cycle=True)")
sched("schedule_inverse_time", "S.InverseTimeDecay(0.1, 10, 0.5)")
sched("schedule_inverse_time_staircase", "S.InverseTimeDecay(0.1, 10, 0.5, staircase=True, name='inv')")
sched("schedule_cosine", "S.CosineDecay(0.1, 1000)")
sched("schedule_cosine_alpha_warmup", "S.CosineDecay(0.0, 1000, alpha=0.1, warmup_target=0.1, warmup_steps=100)")
sched("schedule_cosine_restarts", "S.CosineDecayRestarts(0.1, 100)")
sched("schedule_cosine_restarts_custom", "S.CosineDecayRestarts(0.1, 100, t_mul=2.0, m_mul=0.5, alpha=0.1, name='sgdr')")
sched("schedule_exponential_legacy_format", "S.ExponentialDecay(0.1, 1000, 0.96)", legacy_format=True)

# --- constraints -----------------------------------------------------------------------
constraint("constraint_nonneg", "C.NonNeg()")
constraint("constraint_maxnorm_default", "C.MaxNorm()")
constraint("constraint_maxnorm", "C.MaxNorm(2, axis=0)")
constraint("constraint_maxnorm_float_axis1", "C.MaxNorm(1.5, axis=1)")
constraint("constraint_unitnorm_default", "C.UnitNorm()")
constraint("constraint_unitnorm", "C.UnitNorm(axis=1)")
constraint("constraint_minmaxnorm_default", "C.MinMaxNorm()")
constraint("constraint_minmaxnorm", "C.MinMaxNorm(0.5, 1.5, rate=0.7, axis=0)")
constraint("constraint_minmaxnorm_axis_list", "C.MinMaxNorm(0.0, 2.0, rate=1.0, axis=[0, 1])")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for old in glob.glob(os.path.join(OUT_DIR, "*.json")):
        os.remove(old)
    names = set()
    index = []
    total = 0
    changed_by_json_safe = []
    for name, kind, desc, make in ENTRIES:
        assert name not in names, name
        names.add(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = make()
        safe = json_safe(raw)
        if safe != raw or _has_non_plain(raw):
            changed_by_json_safe.append(name)
        text = json.dumps(safe)
        total += write_json(os.path.join(OUT_DIR, name + ".json"), {"python_json": text, "object": json.loads(text)})
        index.append({"name": name, "kind": kind, "python": desc})
    total += write_json(os.path.join(OUT_DIR, "INDEX.json"),
                        {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "entries": index})
    print(f"wrote {len(ENTRIES)} configs, {total} bytes, to {OUT_DIR}")
    print("json_safe changed (non-plain values in serialize output):", changed_by_json_safe or "none")


def _has_non_plain(o):
    if isinstance(o, dict):
        return any(_has_non_plain(v) for v in o.values())
    if isinstance(o, tuple):
        return True
    if isinstance(o, list):
        return any(_has_non_plain(v) for v in o)
    return not (o is None or type(o) in (bool, int, float, str))


if __name__ == "__main__":
    main()
