#!/usr/bin/env python3
"""Generate Keras 3.15.1 config round-trip fixtures (optimizers, schedules, constraints).

Each Tests/Fixtures/keras3_configs/<name>.json is
    {"name": <name>, "python": <the Python expression that built the object>,
     "serialized": <keras.optimizers.serialize(opt) (or schedules/constraints.serialize)>,
     "json": <json.dumps(serialized) -- the exact string Python writes, default separators ', ' and ': '>,
     "deserialize_round_trip": true | false, "optimizers_deserialize": "ok" | "<exception>"}
`deserialize_round_trip` says whether keras.saving.deserialize_keras_object(serialized) serialized again gives
the same dict (asserted true for every entry); `optimizers_deserialize` records what
keras.optimizers.deserialize does with it: "ok" when it gives back an optimizer of the same class; for Lamb
(missing from ALL_OBJECTS in 3.15.1) it silently returns the string "Lamb" instead.

Tests/Fixtures/keras3_configs/get_config_defaults.json holds `cls().get_config()` of every optimizer class
(LossScaleOptimizer around SGD(), MultiOptimizer around OptimizerMap(SGD())); keras.optimizers has no
`get_config` function, so this is the per-class `get_config()`.

Tests/Fixtures/keras3_configs/INDEX.json lists every name with its kind and Python expression.

Usage:  /work/venv-tf/bin/python scripts/golden/generate_keras3_configs.py
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
import keras  # noqa: E402

assert keras.__version__ == "3.15.1", keras.__version__
assert keras.backend.backend() == "tensorflow", keras.backend.backend()

O = keras.optimizers
S = keras.optimizers.schedules
C = keras.constraints
SCOPE = {"O": O, "S": S, "C": C}

OUT_DIR = os.path.join(FIXTURES, "keras3_configs")
ENTRIES = []  # (name, kind, expression, after_apply)


def opt(name, expr, after_apply=False):
    ENTRIES.append((name, "optimizer", expr, after_apply))


def sched(name, expr):
    ENTRIES.append((name, "schedule", expr, False))


def constraint(name, expr):
    ENTRIES.append((name, "constraint", expr, False))


CLASSES = ["SGD", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "Ftrl", "Nadam", "RMSprop", "Lion", "Lamb",
           "Adafactor", "Muon", "ScheduleFreeAdamW"]
WRAPPED_DEFAULTS = {"LossScaleOptimizer": "O.LossScaleOptimizer(O.SGD())",
                    "MultiOptimizer": "O.MultiOptimizer(O.OptimizerMap(O.SGD()))"}

# --- every class with defaults --------------------------------------------------------
for _cls in CLASSES:
    opt(f"{_cls.lower()}_default", f"O.{_cls}()")
opt("loss_scale_optimizer_default", WRAPPED_DEFAULTS["LossScaleOptimizer"])
opt("multi_optimizer_default", WRAPPED_DEFAULTS["MultiOptimizer"])

# --- each class with its own options -------------------------------------------------------
opt("sgd_momentum_nesterov", "O.SGD(learning_rate=0.05, momentum=0.9, nesterov=True)")
opt("adam_custom", "O.Adam(learning_rate=0.002, beta_1=0.85, beta_2=0.99, epsilon=1e-8, amsgrad=True)")
opt("adamw_custom", "O.AdamW(learning_rate=0.002, weight_decay=0.1, beta_1=0.8, beta_2=0.95, epsilon=1e-6, "
    "amsgrad=True)")
opt("adamax_custom", "O.Adamax(learning_rate=0.002, beta_1=0.8, beta_2=0.95, epsilon=1e-6)")
opt("adagrad_custom", "O.Adagrad(learning_rate=0.05, initial_accumulator_value=0.25, epsilon=1e-6)")
opt("adadelta_custom", "O.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6)")
opt("ftrl_custom", "O.Ftrl(learning_rate=0.05, learning_rate_power=-0.7, initial_accumulator_value=0.3, "
    "l1_regularization_strength=0.01, l2_regularization_strength=0.02, l2_shrinkage_regularization_strength=0.1, "
    "beta=0.5)")
opt("nadam_custom", "O.Nadam(learning_rate=0.002, beta_1=0.8, beta_2=0.99, epsilon=1e-6)")
opt("rmsprop_custom", "O.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5, epsilon=1e-6, centered=True)")
opt("lion_custom", "O.Lion(learning_rate=0.0003, beta_1=0.95, beta_2=0.98)")
opt("lamb_custom", "O.Lamb(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5)")
opt("adafactor_custom", "O.Adafactor(learning_rate=0.01, beta_2_decay=-0.5, epsilon_1=1e-20, epsilon_2=0.01, "
    "clip_threshold=2.0, relative_step=False)")
opt("muon_custom", "O.Muon(learning_rate=0.02, adam_beta_1=0.8, adam_beta_2=0.99, adam_weight_decay=0.01, "
    "epsilon=1e-6, weight_decay=0.1, exclude_layers=['head', 'norm.*'], exclude_embeddings=False, muon_a=3.0, "
    "muon_b=-4.0, muon_c=1.5, adam_lr_ratio=0.1, momentum=0.9, ns_steps=3, nesterov=False, rms_rate=None)")
opt("schedule_free_adamw_custom", "O.ScheduleFreeAdamW(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6, "
    "warmup_steps=100)")

# --- base-class options ----------------------------------------------------------------------
opt("sgd_clipnorm", "O.SGD(learning_rate=0.1, clipnorm=1.0)")
opt("sgd_clipnorm_zero", "O.SGD(learning_rate=0.1, clipnorm=0.0)")
opt("adam_clipvalue", "O.Adam(clipvalue=0.5)")
opt("rmsprop_global_clipnorm_int", "O.RMSprop(global_clipnorm=2)")
opt("adam_weight_decay", "O.Adam(learning_rate=0.01, weight_decay=0.05)")
opt("sgd_ema", "O.SGD(learning_rate=0.1, use_ema=True)")
opt("adam_ema_overwrite", "O.Adam(use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=5)")
opt("adam_loss_scale_factor", "O.Adam(loss_scale_factor=128.0)")
opt("sgd_gradient_accumulation", "O.SGD(learning_rate=0.1, gradient_accumulation_steps=4)")
opt("lion_everything", "O.Lion(learning_rate=0.001, weight_decay=0.01, clipnorm=1.0, use_ema=True, ema_momentum=0.95, "
    "ema_overwrite_frequency=10, loss_scale_factor=2.0, gradient_accumulation_steps=2)")
opt("adam_name", "O.Adam(name='my_adam')")
# O.SGD(name='outer/inner') raises ValueError in Keras 3 (no '/' in a name scope), so there is no such entry.
opt("sgd_name_with_dot_dash", "O.SGD(name='outer.inner-1')")
opt("adam_learning_rate_0_1", "O.Adam(learning_rate=0.1)")
opt("sgd_learning_rate_numpy_float32", "O.SGD(learning_rate=float(np.float32(0.3)))")
opt("adam_decay_is_dropped", "O.Adam(decay=0.5)")

# --- nested schedules --------------------------------------------------------------------------
opt("sgd_sched_exponential", "O.SGD(learning_rate=S.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96))")
opt("adam_sched_exponential_staircase_named",
    "O.Adam(learning_rate=S.ExponentialDecay(0.01, 100, 0.5, staircase=True, name='my_schedule'))")
opt("sgd_sched_piecewise", "O.SGD(learning_rate=S.PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001]), momentum=0.9)")
opt("adam_sched_polynomial", "O.Adam(learning_rate=S.PolynomialDecay(0.01, 1000))")
opt("rmsprop_sched_polynomial_cycle",
    "O.RMSprop(learning_rate=S.PolynomialDecay(0.01, 500, end_learning_rate=0.001, power=2.0, cycle=True))")
opt("adamax_sched_inverse_time", "O.Adamax(learning_rate=S.InverseTimeDecay(0.01, 10, 0.5, staircase=True))")
opt("adamw_sched_cosine_warmup",
    "O.AdamW(learning_rate=S.CosineDecay(0.0, 1000, alpha=0.1, warmup_target=0.001, warmup_steps=100))")
opt("adadelta_sched_cosine_restarts",
    "O.Adadelta(learning_rate=S.CosineDecayRestarts(1.0, 100, t_mul=2.0, m_mul=0.5, alpha=0.1))")
opt("lion_sched_cosine", "O.Lion(learning_rate=S.CosineDecay(0.0003, 5000))")
opt("muon_sched_exponential", "O.Muon(learning_rate=S.ExponentialDecay(0.02, 100, 0.9))")
opt("adafactor_sched_inverse_time", "O.Adafactor(learning_rate=S.InverseTimeDecay(0.01, 10, 0.5))")
opt("schedule_free_adamw_sched_piecewise",
    "O.ScheduleFreeAdamW(learning_rate=S.PiecewiseConstantDecay([10], [0.01, 0.001]))")
opt("lamb_sched_polynomial", "O.Lamb(learning_rate=S.PolynomialDecay(0.01, 100, power=0.5))")

# --- LossScaleOptimizer and MultiOptimizer (nested optimizers) --------------------------------------
opt("loss_scale_optimizer_custom", "O.LossScaleOptimizer(O.Adam(learning_rate=0.01, clipnorm=1.0), "
    "initial_scale=1024.0, dynamic_growth_steps=100, name='lso')")
opt("loss_scale_optimizer_int_scale", "O.LossScaleOptimizer(O.SGD(), initial_scale=8, dynamic_growth_steps=3)")
opt("loss_scale_optimizer_inner_schedule", "O.LossScaleOptimizer(O.AdamW(learning_rate=S.CosineDecay(0.001, 100), "
    "use_ema=True, gradient_accumulation_steps=2))")
opt("loss_scale_optimizer_inner_loss_scale_factor_dropped",
    "O.LossScaleOptimizer(O.SGD(loss_scale_factor=4.0))")
opt("loss_scale_optimizer_around_multi", "O.LossScaleOptimizer(O.MultiOptimizer(O.OptimizerMap(O.SGD(), "
    "{'dense/.*': O.Adam()})), initial_scale=64.0)")
opt("multi_optimizer_map", "O.MultiOptimizer(O.OptimizerMap(O.SGD(learning_rate=0.1, momentum=0.9), "
    "{'dense/.*': O.Adam(learning_rate=0.01), 'embedding/embeddings': O.Adagrad(learning_rate=0.1)}))")
opt("multi_optimizer_loss_scale_factor_named", "O.MultiOptimizer(O.OptimizerMap(O.RMSprop(), "
    "{'enc.*': O.Lion(learning_rate=S.ExponentialDecay(0.001, 10, 0.9))}), loss_scale_factor=16.0, name='multi')")
opt("multi_optimizer_inner_options", "O.MultiOptimizer(O.OptimizerMap(O.AdamW(weight_decay=0.1, use_ema=True), "
    "{'dense/.*': O.SGD(clipnorm=1.0, gradient_accumulation_steps=2, name='fast')}))")

# --- after one apply_gradients (the learning rate variable is float32 in both) -----------------------
opt("adam_after_apply", "O.Adam(learning_rate=0.01, clipnorm=1.0)", after_apply=True)
opt("sgd_momentum_after_apply", "O.SGD(learning_rate=0.1, momentum=0.9)", after_apply=True)
opt("lion_after_apply", "O.Lion(learning_rate=0.001)", after_apply=True)
opt("loss_scale_optimizer_after_apply", "O.LossScaleOptimizer(O.Adam(learning_rate=0.01), initial_scale=8.0)",
    after_apply=True)
opt("multi_optimizer_after_apply", "O.MultiOptimizer(O.OptimizerMap(O.SGD(0.1), {'var0': O.Adam(0.01)}))",
    after_apply=True)

# --- schedules alone ------------------------------------------------------------------------------
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

# --- constraints -------------------------------------------------------------------------------------
constraint("constraint_nonneg", "C.NonNeg()")
constraint("constraint_maxnorm_default", "C.MaxNorm()")
constraint("constraint_maxnorm", "C.MaxNorm(2, axis=0)")
constraint("constraint_maxnorm_float_axis1", "C.MaxNorm(1.5, axis=1)")
constraint("constraint_unitnorm_default", "C.UnitNorm()")
constraint("constraint_unitnorm", "C.UnitNorm(axis=1)")
constraint("constraint_minmaxnorm_default", "C.MinMaxNorm()")
constraint("constraint_minmaxnorm", "C.MinMaxNorm(0.5, 1.5, rate=0.7, axis=0)")
constraint("constraint_minmaxnorm_axis_list", "C.MinMaxNorm(0.0, 2.0, rate=1.0, axis=[0, 1])")


def build(kind, expr, after_apply):
    keras.backend.clear_session()  # auto names restart in every entry
    obj = eval(expr, dict(SCOPE, np=np))
    if after_apply:
        v = keras.Variable(np.array([1.0, 2.0], np.float32), name="var0")
        obj.apply_gradients([(tf.constant([0.1, -0.2]), v)])
    return obj


def serialize(kind, obj):
    return {"optimizer": O.serialize, "schedule": S.serialize, "constraint": C.serialize}[kind](obj)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for old in glob.glob(os.path.join(OUT_DIR, "*.json")):
        os.remove(old)
    names, index, total = set(), [], 0
    for name, kind, expr, after_apply in ENTRIES:
        assert name not in names, name
        names.add(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = build(kind, expr, after_apply)
            raw = serialize(kind, obj)
            safe = json_safe(raw)
            assert safe == raw, name  # serialize() output is plain JSON already
            text = json.dumps(safe)
            keras.backend.clear_session()
            again = json_safe(serialize(kind, keras.saving.deserialize_keras_object(json.loads(text))))
            round_trip = again == safe
            assert round_trip, (name, again, safe)
            fx = {"name": name, "kind": kind,
                  "python": expr + ("  (serialized after one apply_gradients on a float32 var0 [2])"
                                    if after_apply else ""),
                  "serialized": json.loads(text), "json": text, "deserialize_round_trip": round_trip}
            if kind == "optimizer":
                try:
                    keras.backend.clear_session()
                    back = O.deserialize(json.loads(text))
                    if type(back).__name__ == safe["class_name"]:
                        fx["optimizers_deserialize"] = "ok"
                    else:  # Lamb: returns the string "Lamb" instead of raising
                        fx["optimizers_deserialize"] = f"returns {type(back).__name__} {back!r}"
                except Exception as e:  # noqa: BLE001 -- the failure is the recorded fact
                    fx["optimizers_deserialize"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        total += write_json(os.path.join(OUT_DIR, name + ".json"), fx)
        index.append({"name": name, "kind": kind, "python": fx["python"]})

    defaults = {}
    for cls in CLASSES + list(WRAPPED_DEFAULTS):
        keras.backend.clear_session()
        o = eval(WRAPPED_DEFAULTS.get(cls, f"O.{cls}()"), dict(SCOPE))
        defaults[cls] = {"python": WRAPPED_DEFAULTS.get(cls, f"O.{cls}()"), "get_config": json_safe(o.get_config()),
                         "json": json.dumps(json_safe(o.get_config()))}
    total += write_json(os.path.join(OUT_DIR, "get_config_defaults.json"),
                        {"tensorflow": tf.__version__, "keras": keras.__version__, "classes": defaults})
    total += write_json(os.path.join(OUT_DIR, "INDEX.json"),
                        {"tensorflow": tf.__version__, "keras": keras.__version__, "entries": index,
                         "also": ["get_config_defaults.json"]})
    print(f"wrote {len(ENTRIES)} configs + get_config_defaults.json, {total} bytes, to {OUT_DIR}")


if __name__ == "__main__":
    main()
