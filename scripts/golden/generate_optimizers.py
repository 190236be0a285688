#!/usr/bin/env python3
"""Generate golden optimizer trajectories with real TensorFlow + tf_keras.

Every case builds fresh tf.Variables and a fresh tf_keras.optimizers.legacy
optimizer, then runs one eager `opt.apply_gradients(...)` call per step and
records the variables after every step plus the final optimizer state.

Output: Tests/Fixtures/optimizers/<case>.json and Tests/Fixtures/optimizers/INDEX.json
(see scripts/golden/README.md for the format).

Usage:  /work/venv-tf/bin/python scripts/golden/generate_optimizers.py [--only SUBSTRING]
"""

import argparse
import glob
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, json_safe, write_json  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from tf_keras.optimizers import legacy as L  # noqa: E402

S = tf_keras.optimizers.schedules
C = tf_keras.constraints

OUT_DIR = os.path.join(FIXTURES, "optimizers")
N_STEPS = 20


# --------------------------------------------------------------------------
# Case description
# --------------------------------------------------------------------------

class Var:
    def __init__(self, name, shape, dtype="float32", kind="dense", constraint=None,
                 init=None, missing=(), value=None):
        self.name = name
        self.shape = list(shape)
        self.dtype = dtype
        self.kind = kind  # "dense" or "sparse" (gradients are IndexedSlices)
        self.constraint = constraint  # zero-arg factory or None
        self.init = init  # (rng, shape) -> ndarray, or None for N(0,1)
        self.missing = set(missing)  # step indices (0-based) with a null gradient
        self.value = value  # fixed initial value (flat list) or None


class Case:
    def __init__(self, name, description, make_opt, variables, n_steps=N_STEPS,
                 fixed_grads=None, grad_scale=(0.2, 1.5), check=None, poison=()):
        self.name = name
        self.description = description
        self.make_opt = make_opt
        self.variables = variables
        self.n_steps = n_steps
        self.fixed_grads = fixed_grads  # list (steps) of list (vars) of flat lists
        self.grad_scale = grad_scale
        self.check = check  # (case, steps) -> str appended to the description
        # (step, variable index, flat element of the dense gradient or of the sparse values, value):
        # non-finite entries written into the generated gradients.
        self.poison = list(poison)


CASES = []


def add(*args, **kwargs):
    c = Case(*args, **kwargs)
    assert c.name not in {x.name for x in CASES}, c.name
    CASES.append(c)
    return c


def dense_vars(dtype="float32", constraint0=None, constraint1=None, init0=None, init1=None):
    return [Var("var0", [2, 4], dtype, constraint=constraint0, init=init0),
            Var("var1", [3], dtype, constraint=constraint1, init=init1)]


def sparse_vars(dtype="float32", sparse_missing=()):
    return [Var("emb", [6, 3], dtype, kind="sparse", missing=sparse_missing),
            Var("bias", [3], dtype)]


# --------------------------------------------------------------------------
# Data generation (deterministic: seed = crc32(case name))
# --------------------------------------------------------------------------

def np_dtype(d):
    return {"float32": np.float32, "float64": np.float64}[d]


def sparse_indices(rng, rows):
    """3..5 indices in [0, rows), unsorted, always with at least one duplicate."""
    k = int(rng.integers(3, 6))
    idx = [int(i) for i in rng.integers(0, rows, size=k)]
    if len(set(idx)) == len(idx):
        idx[int(rng.integers(1, k))] = idx[0]  # force a duplicate
    rng.shuffle(idx)
    return idx


def build_data(case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    init_values = []
    for v in case.variables:
        dt = np_dtype(v.dtype)
        if v.value is not None:
            a = np.array(v.value, dtype=dt).reshape(v.shape)
        elif v.init is not None:
            a = np.asarray(v.init(rng, v.shape)).astype(dt)
        else:
            a = rng.normal(0.0, 1.0, size=v.shape).astype(dt)
        init_values.append(a)

    steps = []
    for s in range(case.n_steps):
        grads = []
        if case.fixed_grads is not None:
            for v, g in zip(case.variables, case.fixed_grads[s]):
                grads.append(None if g is None else
                             {"dense": np.array(g, dtype=np_dtype(v.dtype)).reshape(v.shape)})
        else:
            scale = rng.uniform(*case.grad_scale)
            for v in case.variables:
                dt = np_dtype(v.dtype)
                if s in v.missing:
                    grads.append(None)
                elif v.kind == "dense":
                    grads.append({"dense": (rng.normal(0.0, 1.0, size=v.shape) * scale).astype(dt)})
                else:
                    idx = sparse_indices(rng, v.shape[0])
                    vals = (rng.normal(0.0, 1.0, size=[len(idx)] + v.shape[1:]) * scale).astype(dt)
                    grads.append({"indices": np.array(idx, dtype=np.int64), "values": vals,
                                  "dense_shape": np.array(v.shape, dtype=np.int64)})
        assert any(g is not None for g in grads), (case.name, s)
        for step, var, element, value in case.poison:
            if step == s:
                g = grads[var]
                (g["dense"] if "dense" in g else g["values"]).reshape(-1)[element] = value
        steps.append(grads)
    return init_values, steps


def flat(a):
    """Row-major flattening to Python scalars (exact: float32 -> Python float is exact)."""
    return np.asarray(a).reshape(-1).tolist()


def grad_json(g):
    if g is None:
        return None
    if "dense" in g:
        return {"dense": flat(g["dense"])}
    return {"indices": flat(g["indices"]), "values": flat(g["values"]),
            "dense_shape": flat(g["dense_shape"])}


def grad_tf(g):
    if "dense" in g:
        return tf.constant(g["dense"])
    return tf.IndexedSlices(tf.constant(g["values"]), tf.constant(g["indices"]),
                            tf.constant(g["dense_shape"]))


# --------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------

def run_case(case):
    init_values, steps = build_data(case)
    constraints = [v.constraint() if v.constraint else None for v in case.variables]
    tf_vars = [tf.Variable(a, name=v.name, dtype=v.dtype, constraint=c)
               for v, a, c in zip(case.variables, init_values, constraints)]
    opt = case.make_opt()
    input_opt = json_safe(tf_keras.optimizers.serialize(opt))

    expected_steps = []
    for grads in steps:
        gv = [(grad_tf(g), var) for g, var in zip(grads, tf_vars) if g is not None]
        opt.apply_gradients(gv)
        expected_steps.append({"variables": [flat(var.numpy()) for var in tf_vars]})

    weights = [flat(w) for w in opt.get_weights()]
    weight_names = [w.name[:-2] if w.name.endswith(":0") else w.name for w in opt.weights]
    description = case.description
    if case.check is not None:
        description += case.check(case, steps)

    fixture = {
        "case": case.name,
        "description": description,
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "input": {
            "optimizer": input_opt,
            "variables": [
                {"name": v.name, "shape": v.shape, "dtype": v.dtype, "value": flat(a),
                 "constraint": json_safe(tf_keras.constraints.serialize(c)) if c is not None else None}
                for v, a, c in zip(case.variables, init_values, constraints)
            ],
            "steps": [{"gradients": [grad_json(g) for g in grads]} for grads in steps],
        },
        "expected": {
            "steps": expected_steps,
            "iterations": int(opt.iterations.numpy()),
            "weights": weights,
            "weight_names": weight_names,
            "config": json_safe(tf_keras.optimizers.serialize(opt)),
        },
    }
    return fixture


# --------------------------------------------------------------------------
# Clipping checks (make sure the clip really triggers on some steps only)
# --------------------------------------------------------------------------

def _gvals(g):
    return np.asarray(g["dense"] if "dense" in g else g["values"], dtype=np.float64)


def check_clipnorm(c):
    def f(case, steps):
        norms = [np.sqrt((_gvals(g) ** 2).sum()) for gr in steps for g in gr if g is not None]
        hit = sum(n > c for n in norms)
        assert 0 < hit < len(norms), (case.name, hit, len(norms))
        return f" [clipnorm={c} triggers on {hit} of {len(norms)} (step, tensor) gradients]"
    return f


def check_global_clipnorm(c):
    def f(case, steps):
        hit = sum(np.sqrt(sum((_gvals(g) ** 2).sum() for g in gr if g is not None)) > c for gr in steps)
        assert 0 < hit < len(steps), (case.name, hit)
        return f" [global_clipnorm={c} triggers on {hit}/{len(steps)} steps]"
    return f


def check_clipvalue(c):
    def f(case, steps):
        hit = sum(int((np.abs(_gvals(g)) > c).sum()) for gr in steps for g in gr if g is not None)
        tot = sum(_gvals(g).size for gr in steps for g in gr if g is not None)
        assert 0 < hit < tot, (case.name, hit)
        return f" [clipvalue={c} clips {hit}/{tot} gradient entries]"
    return f


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------

# Per-optimizer options: both a dense case and a sparse case for each.
OPTIONS = [
    ("sgd", "SGD(learning_rate=0.1)", lambda: L.SGD(learning_rate=0.1)),
    ("sgd_momentum", "SGD(learning_rate=0.1, momentum=0.9)", lambda: L.SGD(learning_rate=0.1, momentum=0.9)),
    ("sgd_nesterov", "SGD(learning_rate=0.1, momentum=0.9, nesterov=True)",
     lambda: L.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("adam", "Adam(learning_rate=0.01)", lambda: L.Adam(learning_rate=0.01)),
    ("adam_amsgrad", "Adam(learning_rate=0.01, amsgrad=True)", lambda: L.Adam(learning_rate=0.01, amsgrad=True)),
    ("adagrad", "Adagrad(learning_rate=0.1)", lambda: L.Adagrad(learning_rate=0.1)),
    ("adadelta_lr1", "Adadelta(learning_rate=1.0)", lambda: L.Adadelta(learning_rate=1.0)),
    ("adadelta_default", "Adadelta() (all defaults, lr=0.001)", lambda: L.Adadelta()),
    ("adamax", "Adamax(learning_rate=0.05)", lambda: L.Adamax(learning_rate=0.05)),
    ("ftrl", "Ftrl(learning_rate=0.1), other args default (learning_rate_power=-0.5)",
     lambda: L.Ftrl(learning_rate=0.1)),
    ("ftrl_l1_l2", "Ftrl(learning_rate=0.1, l1=0.3, l2=0.02), learning_rate_power=-0.5 exactly",
     lambda: L.Ftrl(learning_rate=0.1, l1_regularization_strength=0.3, l2_regularization_strength=0.02)),
    ("ftrl_power07_init03", "Ftrl(learning_rate=0.1, learning_rate_power=-0.7, initial_accumulator_value=0.3, l2=0.01)",
     lambda: L.Ftrl(learning_rate=0.1, learning_rate_power=-0.7, initial_accumulator_value=0.3,
                    l2_regularization_strength=0.01)),
    ("ftrl_shrinkage_beta",
     "Ftrl(learning_rate=0.1, l1=0.05, l2=0.01, l2_shrinkage=0.1, beta=0.5), learning_rate_power=-0.5",
     lambda: L.Ftrl(learning_rate=0.1, l1_regularization_strength=0.05, l2_regularization_strength=0.01,
                    l2_shrinkage_regularization_strength=0.1, beta=0.5)),
    ("ftrl_all",
     "Ftrl(learning_rate=0.2, learning_rate_power=-0.7, initial_accumulator_value=0.3, l1=0.01, l2=0.05, "
     "l2_shrinkage=0.05, beta=0.3)",
     lambda: L.Ftrl(learning_rate=0.2, learning_rate_power=-0.7, initial_accumulator_value=0.3,
                    l1_regularization_strength=0.01, l2_regularization_strength=0.05,
                    l2_shrinkage_regularization_strength=0.05, beta=0.3)),
    ("nadam", "Nadam() (all defaults)", lambda: L.Nadam()),
    ("nadam_lr", "Nadam(learning_rate=0.01)", lambda: L.Nadam(learning_rate=0.01)),
    ("nadam_beta", "Nadam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)",
     lambda: L.Nadam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)),
    ("nadam_schedule_decay", "Nadam(learning_rate=0.01, schedule_decay=0.02)",
     lambda: L.Nadam(learning_rate=0.01, schedule_decay=0.02)),
    ("rmsprop", "RMSprop(learning_rate=0.01)", lambda: L.RMSprop(learning_rate=0.01)),
    ("rmsprop_centered", "RMSprop(learning_rate=0.01, centered=True)",
     lambda: L.RMSprop(learning_rate=0.01, centered=True)),
    ("rmsprop_momentum", "RMSprop(learning_rate=0.01, momentum=0.5)",
     lambda: L.RMSprop(learning_rate=0.01, momentum=0.5)),
    ("rmsprop_momentum_centered", "RMSprop(learning_rate=0.01, momentum=0.5, centered=True)",
     lambda: L.RMSprop(learning_rate=0.01, momentum=0.5, centered=True)),
]

for _name, _desc, _make in OPTIONS:
    add(f"{_name}_dense", f"{_desc}; dense float32 vars [2,4] and [3]", _make, dense_vars())
    add(f"{_name}_sparse",
        f"{_desc}; emb [6,3] with IndexedSlices gradients (duplicate, unsorted indices) + dense bias [3]",
        _make, sparse_vars())

# --- learning-rate schedules -------------------------------------------------
SCHEDULES = [
    ("sched_exponential_sgd", "SGD(ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5))",
     lambda: L.SGD(learning_rate=S.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5))),
    ("sched_exponential_staircase_adam", "Adam(ExponentialDecay(0.05, decay_steps=4, decay_rate=0.6, staircase=True))",
     lambda: L.Adam(learning_rate=S.ExponentialDecay(0.05, decay_steps=4, decay_rate=0.6, staircase=True))),
    ("sched_piecewise_sgd", "SGD(PiecewiseConstantDecay([5, 12], [0.1, 0.05, 0.01]), momentum=0.9)",
     lambda: L.SGD(learning_rate=S.PiecewiseConstantDecay([5, 12], [0.1, 0.05, 0.01]), momentum=0.9)),
    ("sched_polynomial_adam", "Adam(PolynomialDecay(0.05, decay_steps=10, end_learning_rate=0.001, power=2.0))",
     lambda: L.Adam(learning_rate=S.PolynomialDecay(0.05, decay_steps=10, end_learning_rate=0.001, power=2.0))),
    ("sched_polynomial_cycle_sgd",
     "SGD(PolynomialDecay(0.1, decay_steps=7, end_learning_rate=0.01, power=2.0, cycle=True))",
     lambda: L.SGD(learning_rate=S.PolynomialDecay(0.1, decay_steps=7, end_learning_rate=0.01, power=2.0,
                                                   cycle=True))),
    ("sched_inverse_time_sgd", "SGD(InverseTimeDecay(0.1, decay_steps=3, decay_rate=0.5), momentum=0.5)",
     lambda: L.SGD(learning_rate=S.InverseTimeDecay(0.1, decay_steps=3, decay_rate=0.5), momentum=0.5)),
    ("sched_inverse_time_staircase_adam", "Adam(InverseTimeDecay(0.05, decay_steps=3, decay_rate=0.5, staircase=True))",
     lambda: L.Adam(learning_rate=S.InverseTimeDecay(0.05, decay_steps=3, decay_rate=0.5, staircase=True))),
    ("sched_cosine_adam", "Adam(CosineDecay(0.05, decay_steps=15, alpha=0.1))",
     lambda: L.Adam(learning_rate=S.CosineDecay(0.05, decay_steps=15, alpha=0.1))),
    ("sched_cosine_sgd", "SGD(CosineDecay(0.1, decay_steps=12)) (alpha=0, no warmup)",
     lambda: L.SGD(learning_rate=S.CosineDecay(0.1, decay_steps=12))),
    ("sched_cosine_warmup_sgd",
     "SGD(CosineDecay(0.01, decay_steps=10, alpha=0.05, warmup_target=0.1, warmup_steps=5))",
     lambda: L.SGD(learning_rate=S.CosineDecay(0.01, decay_steps=10, alpha=0.05, warmup_target=0.1,
                                               warmup_steps=5))),
    ("sched_cosine_warmup_adam",
     "Adam(CosineDecay(0.0, decay_steps=8, warmup_target=0.05, warmup_steps=4))",
     lambda: L.Adam(learning_rate=S.CosineDecay(0.0, decay_steps=8, warmup_target=0.05, warmup_steps=4))),
    ("sched_cosine_restarts_sgd",
     "SGD(CosineDecayRestarts(0.1, first_decay_steps=4, t_mul=2.0, m_mul=0.5, alpha=0.1)); restarts at 4, 12",
     lambda: L.SGD(learning_rate=S.CosineDecayRestarts(0.1, first_decay_steps=4, t_mul=2.0, m_mul=0.5,
                                                       alpha=0.1))),
    ("sched_cosine_restarts_tmul1_adam",
     "Adam(CosineDecayRestarts(0.05, first_decay_steps=6, t_mul=1.0, m_mul=0.8))",
     lambda: L.Adam(learning_rate=S.CosineDecayRestarts(0.05, first_decay_steps=6, t_mul=1.0, m_mul=0.8))),
    ("sched_adagrad", "Adagrad(ExponentialDecay(0.1, decay_steps=4, decay_rate=0.7)) (Adagrad.from_config "
     "cannot load this config, serialize works)",
     lambda: L.Adagrad(learning_rate=S.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.7))),
    ("decay_sgd_momentum", "SGD(learning_rate=0.1, momentum=0.9, decay=0.1)",
     lambda: L.SGD(learning_rate=0.1, momentum=0.9, decay=0.1)),
    ("decay_adam", "Adam(learning_rate=0.02, decay=0.1)", lambda: L.Adam(learning_rate=0.02, decay=0.1)),
    ("decay_with_schedule_adam",
     "Adam(ExponentialDecay(0.05, decay_steps=5, decay_rate=0.5), decay=0.1): schedule and decay compose",
     lambda: L.Adam(learning_rate=S.ExponentialDecay(0.05, decay_steps=5, decay_rate=0.5), decay=0.1)),
    ("decay_with_schedule_sgd",
     "SGD(PiecewiseConstantDecay([6], [0.1, 0.02]), decay=0.2)",
     lambda: L.SGD(learning_rate=S.PiecewiseConstantDecay([6], [0.1, 0.02]), decay=0.2)),
]
for _name, _desc, _make in SCHEDULES:
    add(_name, f"{_desc}; dense float32 vars [2,4] and [3]", _make, dense_vars())

# --- clipping ----------------------------------------------------------------
add("clipnorm_adam_dense", "Adam(learning_rate=0.01, clipnorm=2.0); dense", lambda: L.Adam(learning_rate=0.01, clipnorm=2.0),
    dense_vars(), check=check_clipnorm(2.0))
add("clipnorm_sgd_momentum_dense", "SGD(learning_rate=0.1, momentum=0.9, clipnorm=1.5); dense",
    lambda: L.SGD(learning_rate=0.1, momentum=0.9, clipnorm=1.5), dense_vars(), check=check_clipnorm(1.5))
add("clipvalue_sgd_dense", "SGD(learning_rate=0.1, clipvalue=0.5); dense",
    lambda: L.SGD(learning_rate=0.1, clipvalue=0.5), dense_vars(), check=check_clipvalue(0.5))
add("clipvalue_adam_dense", "Adam(learning_rate=0.01, clipvalue=0.8); dense",
    lambda: L.Adam(learning_rate=0.01, clipvalue=0.8), dense_vars(), check=check_clipvalue(0.8))
add("global_clipnorm_adam_dense", "Adam(learning_rate=0.01, global_clipnorm=3.0); dense",
    lambda: L.Adam(learning_rate=0.01, global_clipnorm=3.0), dense_vars(), check=check_global_clipnorm(3.0))
add("global_clipnorm_sgd_dense", "SGD(learning_rate=0.1, global_clipnorm=2.5); dense",
    lambda: L.SGD(learning_rate=0.1, global_clipnorm=2.5), dense_vars(), check=check_global_clipnorm(2.5))
add("clipnorm_sgd_sparse",
    "SGD(learning_rate=0.1, clipnorm=1.0); sparse with duplicate indices (norm over un-summed rows)",
    lambda: L.SGD(learning_rate=0.1, clipnorm=1.0), sparse_vars(), check=check_clipnorm(1.0))
add("clipnorm_adagrad_sparse",
    "Adagrad(learning_rate=0.1, clipnorm=1.0); sparse with duplicate indices (norm over un-summed rows)",
    lambda: L.Adagrad(learning_rate=0.1, clipnorm=1.0), sparse_vars(), check=check_clipnorm(1.0))
add("clipvalue_sgd_momentum_sparse",
    "SGD(learning_rate=0.1, momentum=0.9, clipvalue=0.5); sparse with duplicate indices (rows clipped before summing)",
    lambda: L.SGD(learning_rate=0.1, momentum=0.9, clipvalue=0.5), sparse_vars(), check=check_clipvalue(0.5))
add("global_clipnorm_adam_sparse",
    "Adam(learning_rate=0.01, global_clipnorm=2.0); sparse with duplicate indices",
    lambda: L.Adam(learning_rate=0.01, global_clipnorm=2.0), sparse_vars(), check=check_global_clipnorm(2.0))
add("clipvalue_clipnorm_sgd_dense", "SGD(learning_rate=0.1, clipvalue=0.7, clipnorm=1.5): clipvalue first, then clipnorm",
    lambda: L.SGD(learning_rate=0.1, clipvalue=0.7, clipnorm=1.5), dense_vars(), check=check_clipvalue(0.7))

# --- constraints (dense only) --------------------------------------------------
add("constraint_nonneg_adam", "Adam(learning_rate=0.05); NonNeg on both vars (initial values in [0, 0.3))",
    lambda: L.Adam(learning_rate=0.05), dense_vars(constraint0=C.NonNeg, constraint1=C.NonNeg,
                                                   init0=lambda r, s: r.uniform(0.0, 0.3, s),
                                                   init1=lambda r, s: r.uniform(0.0, 0.3, s)))
add("constraint_maxnorm_sgd_momentum",
    "SGD(learning_rate=0.1, momentum=0.9); MaxNorm(2, axis=0) on var0 [2,4], MaxNorm(2, axis=0) on var1 [3]",
    lambda: L.SGD(learning_rate=0.1, momentum=0.9),
    dense_vars(constraint0=lambda: C.MaxNorm(2, axis=0), constraint1=lambda: C.MaxNorm(2, axis=0),
               init0=lambda r, s: r.normal(0.0, 1.3, s)))
add("constraint_unitnorm_adam", "Adam(learning_rate=0.05); UnitNorm(axis=1) on var0 [2,4], none on var1",
    lambda: L.Adam(learning_rate=0.05), dense_vars(constraint0=lambda: C.UnitNorm(axis=1)))
add("constraint_minmaxnorm_sgd",
    "SGD(learning_rate=0.2); MinMaxNorm(0.5, 1.5, rate=0.7, axis=0) on var0 [2,4], NonNeg on var1",
    lambda: L.SGD(learning_rate=0.2),
    dense_vars(constraint0=lambda: C.MinMaxNorm(0.5, 1.5, rate=0.7, axis=0), constraint1=C.NonNeg,
               init0=lambda r, s: r.normal(0.0, 1.0, s) * np.array([0.1, 0.6, 1.2, 2.5])))
add("constraint_minmaxnorm_adam",
    "Adam(learning_rate=0.1); MinMaxNorm(0.5, 1.5, rate=0.7, axis=0) on var0 [2,4]",
    lambda: L.Adam(learning_rate=0.1),
    dense_vars(constraint0=lambda: C.MinMaxNorm(0.5, 1.5, rate=0.7, axis=0),
               init0=lambda r, s: r.normal(0.0, 1.0, s) * np.array([0.1, 0.6, 1.2, 2.5])))


# --- missing gradients ------------------------------------------------------
def missing_vars(dtype="float32"):
    return [Var("a", [2, 3], dtype),
            Var("b", [3], dtype, missing={2, 3, 9, 14}),
            Var("c", [2, 2], dtype, missing={0, 1, 2, 3, 4})]


MISSING_DESC = ("; vars a [2,3] always, b [3] null at steps 2,3,9,14, c [2,2] null at steps 0-4 "
                "(first gradient at 0-based step 5, so its slots are created last)")
add("missing_adam", "Adam(learning_rate=0.01)" + MISSING_DESC, lambda: L.Adam(learning_rate=0.01), missing_vars())
add("missing_sgd_momentum", "SGD(learning_rate=0.1, momentum=0.9)" + MISSING_DESC,
    lambda: L.SGD(learning_rate=0.1, momentum=0.9), missing_vars())
add("missing_ftrl", "Ftrl(learning_rate=0.1, l1=0.01)" + MISSING_DESC,
    lambda: L.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01), missing_vars())
add("missing_nadam", "Nadam(learning_rate=0.01)" + MISSING_DESC, lambda: L.Nadam(learning_rate=0.01), missing_vars())
add("missing_rmsprop_momentum_centered", "RMSprop(learning_rate=0.01, momentum=0.5, centered=True)" + MISSING_DESC,
    lambda: L.RMSprop(learning_rate=0.01, momentum=0.5, centered=True), missing_vars())
add("missing_adadelta", "Adadelta(learning_rate=1.0)" + MISSING_DESC, lambda: L.Adadelta(learning_rate=1.0),
    missing_vars())
add("missing_adam_sparse",
    "Adam(learning_rate=0.01); sparse emb [6,3] null at steps 0,1,6,7 (slots created at step 2, no decay "
    "of m/v while null) + dense bias [3]",
    lambda: L.Adam(learning_rate=0.01), sparse_vars(sparse_missing={0, 1, 6, 7}))
add("missing_nadam_mixed_dtype",
    "Nadam(learning_rate=0.01); var0 float64 [3] (first var: momentum_cache is float64) null at steps 4-7, "
    "var1 float32 [4]: the cache is not advanced on steps with only float32 vars",
    lambda: L.Nadam(learning_rate=0.01),
    [Var("var0", [3], "float64", missing={4, 5, 6, 7}), Var("var1", [4], "float32")])

# --- float64 ----------------------------------------------------------------
F64 = "; float64 vars [2,4] and [3] (hypers are float32-rounded)"
add("float64_adam", "Adam(learning_rate=0.01)" + F64, lambda: L.Adam(learning_rate=0.01), dense_vars("float64"))
add("float64_rmsprop_momentum", "RMSprop(learning_rate=0.01, rho=0.8, momentum=0.3)" + F64,
    lambda: L.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.3), dense_vars("float64"))
add("float64_ftrl_shrinkage",
    "Ftrl(learning_rate=0.1, l1=0.01, l2=0.01, l2_shrinkage=0.1, beta=0.1)" + F64 + "; shrinkage via tf.cast",
    lambda: L.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.01,
                   l2_shrinkage_regularization_strength=0.1, beta=0.1), dense_vars("float64"))
add("float64_sgd_decay", "SGD(learning_rate=0.1, decay=0.1)" + F64 + "; decay is float32-rounded too",
    lambda: L.SGD(learning_rate=0.1, decay=0.1), dense_vars("float64"))
add("float64_nadam", "Nadam(learning_rate=0.01)" + F64 + "; 0.96 is float32-rounded",
    lambda: L.Nadam(learning_rate=0.01), dense_vars("float64"))
add("float64_adam_sparse", "Adam(learning_rate=0.01); float64 emb [6,3] sparse (dup indices) + bias [3]",
    lambda: L.Adam(learning_rate=0.01), sparse_vars("float64"))
add("float64_sched_cosine_sgd", "SGD(CosineDecay(0.1, decay_steps=10, alpha=0.1), momentum=0.9)" + F64 +
    "; schedule computed in float32 then cast",
    lambda: L.SGD(learning_rate=S.CosineDecay(0.1, decay_steps=10, alpha=0.1), momentum=0.9),
    dense_vars("float64"))

# --- spec §5 two-step golden vectors ---------------------------------------------
SPEC = [
    ("spec_sgd", lambda: L.SGD(learning_rate=0.1), "SGD(lr=0.1)",
     [[0.99000001, 2.01999998], [0.960000038, 1.98000002]]),
    ("spec_sgd_momentum", lambda: L.SGD(learning_rate=0.1, momentum=0.9), "SGD(lr=0.1, momentum=0.9)",
     [[0.99000001, 2.01999998], [0.951000035, 1.99800003]]),
    ("spec_sgd_nesterov", lambda: L.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
     "SGD(lr=0.1, momentum=0.9, nesterov=True)",
     [[0.981000006, 2.03800011], [0.915899992, 1.97820008]]),
    ("spec_sgd_decay", lambda: L.SGD(learning_rate=0.1, decay=0.5), "SGD(lr=0.1, decay=0.5)",
     [[0.99000001, 2.01999998], [0.970000029, 1.99333334]]),
    ("spec_adam", lambda: L.Adam(learning_rate=0.1), "Adam(lr=0.1)",
     [[0.900003135, 2.09999847], [0.808226228, 2.06338859]]),
    ("spec_adam_amsgrad", lambda: L.Adam(learning_rate=0.1, amsgrad=True), "Adam(lr=0.1, amsgrad=True)",
     [[0.900003135, 2.09999847], [0.808226228, 2.06338859]]),
    ("spec_adagrad", lambda: L.Adagrad(learning_rate=0.1), "Adagrad(lr=0.1)",
     [[0.969848871, 2.05345225], [0.902766824, 1.98042262]]),
    ("spec_adadelta", lambda: L.Adadelta(learning_rate=1.0), "Adadelta(lr=1.0)",
     [[0.998585939, 2.00141406], [0.996683955, 1.99961627]]),
    ("spec_adamax", lambda: L.Adamax(learning_rate=0.1), "Adamax(lr=0.1)",
     [[0.900000095, 2.0999999], [0.831579089, 2.07105255]]),
    ("spec_ftrl", lambda: L.Ftrl(learning_rate=0.1), "Ftrl(learning_rate=0.1)",
     [[0.0163862742, 0.363143772], [-0.0506957658, 0.290114105]]),
    ("spec_ftrl_l1_l2_shrinkage_beta",
     lambda: L.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.01,
                    l2_shrinkage_regularization_strength=0.1, beta=0.5),
     "Ftrl(learning_rate=0.1, l1=0.01, l2=0.01, l2_shrinkage=0.1, beta=0.5)",
     [[-0.0162719209, 0.108285397], [-0.0475341789, 0.0681169704]]),
    ("spec_nadam", lambda: L.Nadam(learning_rate=0.1), "Nadam(lr=0.1)",
     [[0.894354939, 2.10564518], [0.793221235, 2.01498985]]),
    ("spec_rmsprop", lambda: L.RMSprop(learning_rate=0.1), "RMSprop(lr=0.1)",
     [[0.683773279, 2.3162272], [0.38226226, 2.03051305]]),
    ("spec_rmsprop_centered", lambda: L.RMSprop(learning_rate=0.1, centered=True), "RMSprop(lr=0.1, centered=True)",
     [[0.666667819, 2.33333278], [0.338931412, 2.04402447]]),
    ("spec_rmsprop_momentum", lambda: L.RMSprop(learning_rate=0.1, momentum=0.5), "RMSprop(lr=0.1, momentum=0.5)",
     [[0.683788061, 2.31622386], [0.224172294, 2.18862224]]),
    ("spec_rmsprop_momentum_centered", lambda: L.RMSprop(learning_rate=0.1, momentum=0.5, centered=True),
     "RMSprop(lr=0.1, momentum=0.5, centered=True)",
     [[0.666685224, 2.33332872], [0.172293007, 2.21068525]]),
]
SPEC_TABLE = {}
for _name, _make, _desc, _table in SPEC:
    SPEC_TABLE[_name] = _table
    add(_name, f"spec §5 golden vector: {_desc}; var=[1,2], g1=[0.1,-0.2], g2=[0.3,0.4]", _make,
        [Var("var0", [2], value=[1.0, 2.0])], n_steps=2, fixed_grads=[[[0.1, -0.2]], [[0.3, 0.4]]])


# --- denormals: TensorFlow's CPU kernels flush them to zero (FTZ + DAZ) -------------
# Slots decay into the denormal range (below 1.18e-38) within a few steps: beta_1/rho/momentum 0.1 and
# gradients that are then exactly 0, plus denormal initial values and tiny gradients whose squares are
# denormal. With IEEE denormals m would stick at the smallest denormal; TF makes it 0.
DENORMAL_VALUE = [1e-39, 1.0, -3e-40, 2e-38, 0.5, -1e-36]
DENORMAL_GRADS = [[[1e-36, 1e-19, 0.5, 0.0, 2e-20, -1e-37]]] + [[[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]] * 5
for _name, _desc, _make in [
    ("denormal_adam", "Adam(learning_rate=0.01, beta_1=0.1, beta_2=0.1)",
     lambda: L.Adam(learning_rate=0.01, beta_1=0.1, beta_2=0.1)),
    ("denormal_sgd_momentum", "SGD(learning_rate=0.1, momentum=0.1)",
     lambda: L.SGD(learning_rate=0.1, momentum=0.1)),
    ("denormal_rmsprop", "RMSprop(learning_rate=0.01, rho=0.1)",
     lambda: L.RMSprop(learning_rate=0.01, rho=0.1)),
]:
    add(_name, f"{_desc}; var [6] with denormal values, tiny gradients then zeros: TF flushes denormals to 0",
        _make, [Var("var0", [6], value=DENORMAL_VALUE)], n_steps=len(DENORMAL_GRADS), fixed_grads=DENORMAL_GRADS)


# --- non-finite gradients under clipping ----------------------------------------
# TF 2.21: clip_by_norm with a NaN norm gives NaN everywhere (tf.maximum propagates NaN); an infinite
# norm gives 0 for the finite elements and NaN for the infinite ones; clip_by_value keeps NaN and clips
# ±inf; a non-finite global norm makes every gradient NaN. NaN flows into the update; iterations counts.
NONFINITE_POISON = [(1, 0, 1, float("nan")), (3, 1, 0, float("inf")), (4, 0, 0, float("-inf"))]
for _oname, _odesc, _omake in [("sgd", "SGD(learning_rate=0.1", lambda **k: L.SGD(learning_rate=0.1, **k)),
                               ("adam", "Adam(learning_rate=0.01", lambda **k: L.Adam(learning_rate=0.01, **k))]:
    for _cname, _carg in [("clipnorm", {"clipnorm": 1.0}), ("clipvalue", {"clipvalue": 0.5}),
                          ("global_clipnorm", {"global_clipnorm": 2.0})]:
        for _kind, _vars in [("dense", dense_vars), ("sparse", sparse_vars)]:
            _k = next(iter(_carg)); _v = _carg[_k]
            add(f"nonfinite_{_cname}_{_oname}_{_kind}",
                f"{_odesc}, {_k}={_v}); {_kind}; NaN in var 0's gradient at step 1, +inf in var 1's at step 3, "
                f"-inf in var 0's at step 4",
                (lambda m=_omake, a=dict(_carg): m(**a)), _vars(), n_steps=6, poison=NONFINITE_POISON)
add("nonfinite_adam_noclip_dense", "Adam(learning_rate=0.01); dense; NaN/inf gradients, no clipping",
    lambda: L.Adam(learning_rate=0.01), dense_vars(), n_steps=6, poison=NONFINITE_POISON)


# --------------------------------------------------------------------------
# Tied variables: one variable given twice in one apply_gradients call
# (Tests/Fixtures/optimizers_tied/<case>.json; each step lists its (gradient, variable index) pairs)
# --------------------------------------------------------------------------

TIED_DIR = os.path.join(FIXTURES, "optimizers_tied")
TIED_STEPS = 5


def tied_cases():
    cases = []
    opts = [("sgd_momentum", "SGD(learning_rate=0.1, momentum=0.9)", lambda: L.SGD(learning_rate=0.1, momentum=0.9)),
            ("adam", "Adam(learning_rate=0.01)", lambda: L.Adam(learning_rate=0.01))]
    for oname, odesc, make in opts:
        for first in ("dense", "sparse"):
            for second in ("dense", "sparse"):
                cases.append((f"tied_{oname}_{first}_{second}",
                              f"{odesc}; 'tied' [4,3] gets a {first} then a {second} gradient in each call, "
                              f"with 'other' [3] (dense) in between", make, (first, second), None))
    cases.append(("tied_sgd_nonneg_dense_dense",
                  "SGD(learning_rate=0.5); 'tied' [4,3] with NonNeg gets two dense gradients per call: the "
                  "constraint runs after each", lambda: L.SGD(learning_rate=0.5), ("dense", "dense"), C.NonNeg))
    return cases


def tied_gradient(rng, kind, shape):
    if kind == "dense":
        return {"dense": rng.normal(0.0, 1.0, size=shape).astype(np.float32)}
    idx = sparse_indices(rng, shape[0])
    return {"indices": np.array(idx, dtype=np.int64),
            "values": rng.normal(0.0, 1.0, size=[len(idx)] + shape[1:]).astype(np.float32),
            "dense_shape": np.array(shape, dtype=np.int64)}


def run_tied_case(name, description, make, kinds, constraint):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    shapes = {"tied": [4, 3], "other": [3]}
    init = {k: rng.normal(0.0, 1.0, size=s).astype(np.float32) for k, s in shapes.items()}
    c = constraint() if constraint else None
    tf_vars = [tf.Variable(init["tied"], name="tied", constraint=c), tf.Variable(init["other"], name="other")]
    opt = make()
    input_opt = json_safe(tf_keras.optimizers.serialize(opt))
    steps, expected = [], []
    for _ in range(TIED_STEPS):
        pairs = [(tied_gradient(rng, kinds[0], shapes["tied"]), 0), (tied_gradient(rng, "dense", shapes["other"]), 1),
                 (tied_gradient(rng, kinds[1], shapes["tied"]), 0)]
        opt.apply_gradients([(grad_tf(g), tf_vars[i]) for g, i in pairs])
        steps.append({"pairs": [{"variable": i, "gradient": grad_json(g)} for g, i in pairs]})
        expected.append({"variables": [flat(v.numpy()) for v in tf_vars]})
    return {
        "case": name, "description": description, "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
        "input": {
            "optimizer": input_opt,
            "variables": [{"name": n, "shape": shapes[n], "dtype": "float32", "value": flat(init[n]),
                           "constraint": json_safe(tf_keras.constraints.serialize(c)) if (c and n == "tied") else None}
                          for n in ("tied", "other")],
            "steps": steps,
        },
        "expected": {
            "steps": expected,
            "iterations": int(opt.iterations.numpy()),
            "weights": [flat(w) for w in opt.get_weights()],
            "weight_names": [w.name[:-2] if w.name.endswith(":0") else w.name for w in opt.weights],
        },
    }


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="generate only cases whose name contains this")
    args = ap.parse_args()

    os.makedirs(OUT_DIR, exist_ok=True)
    if not args.only:
        for old in glob.glob(os.path.join(OUT_DIR, "*.json")):
            os.remove(old)

    total = 0
    spec_mismatch = []
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        fx = run_case(case)
        total += write_json(os.path.join(OUT_DIR, case.name + ".json"), fx, allow_nonfinite=bool(case.poison))
        if case.name in SPEC_TABLE:
            got = [s["variables"][0] for s in fx["expected"]["steps"]]
            want = SPEC_TABLE[case.name]
            if not np.allclose(got, want, rtol=2e-7, atol=1e-8):
                spec_mismatch.append((case.name, got, want))

    if not args.only:
        index = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
                 "cases": [c.name for c in CASES]}
        total += write_json(os.path.join(OUT_DIR, "INDEX.json"), index)
        for old in glob.glob(os.path.join(TIED_DIR, "*.json")):
            os.remove(old)
    for tied in tied_cases():
        if args.only and args.only not in tied[0]:
            continue
        total += write_json(os.path.join(TIED_DIR, tied[0] + ".json"), run_tied_case(*tied))
    print(f"wrote {len(CASES) if not args.only else 'some'} cases, {total} bytes, to {OUT_DIR}")
    for name, got, want in spec_mismatch:
        print(f"SPEC MISMATCH {name}: TF {got} vs spec {want}")
    if not spec_mismatch:
        print("all spec §5 golden vectors reproduced")


if __name__ == "__main__":
    main()
