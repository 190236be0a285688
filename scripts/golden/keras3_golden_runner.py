"""Case description, data generation and running for generate_keras3_optimizers.py (Keras 3.15.1, TF backend).

Var and Case describe a trajectory case; build_data draws its data from numpy.random.default_rng(crc32(name));
run_case builds the keras.Variables and the optimizer in a cleared session, runs one eager
`opt.apply_gradients(list(zip(grads, vars)))` per step and returns the fixture dict (format: README.md).
EXPECTED_ERRORS lists what Keras 3.15.1 refuses; check_expected_errors asserts that each still raises.
Importing this module asserts the Keras version and backend.
"""

import warnings
import zlib

from golden_common import json_safe

import numpy as np
import tensorflow as tf
import keras

assert keras.__version__ == "3.15.1", keras.__version__
assert keras.backend.backend() == "tensorflow", keras.backend.backend()

O = keras.optimizers
C = keras.constraints

N_STEPS = 10


# --------------------------------------------------------------------------
# Case description
# --------------------------------------------------------------------------

class Var:
    def __init__(self, name, shape, dtype="float32", kind="dense", constraint=None,
                 init=None, missing=(), scope=None):
        self.name = name
        self.scope = scope  # keras.name_scope for the variable: path = scope/name
        self.shape = list(shape)
        self.dtype = dtype
        self.kind = kind  # "dense" or "sparse" (gradients are IndexedSlices)
        self.constraint = constraint  # zero-arg factory or None
        self.init = init  # (rng, shape) -> ndarray, or None for N(0,1)
        self.missing = set(missing)  # step indices (0-based) with a None gradient

    @property
    def path(self):
        return f"{self.scope}/{self.name}" if self.scope else self.name


class Case:
    def __init__(self, name, description, make_opt, variables, n_steps=N_STEPS, grad_scale=(0.2, 1.5),
                 grad_multiplier=1.0, check=None, poison=(), exclude_from_weight_decay=None, same_as=None):
        self.name = name
        # Another case whose data (seed) this case uses and whose trajectory it must reproduce exactly.
        self.same_as = same_as
        self.description = description
        self.make_opt = make_opt
        self.variables = variables
        self.n_steps = n_steps
        self.grad_scale = grad_scale
        # Gradients are multiplied by this (the loss-scaled gradients of LossScaleOptimizer and
        # loss_scale_factor cases).
        self.grad_multiplier = grad_multiplier
        self.check = check  # (case, steps) -> str appended to the description
        # (step, variable index, flat element of the dense gradient or of the sparse values, value)
        self.poison = list(poison)
        # var_names for opt.exclude_from_weight_decay(var_names=...), called before the first step
        self.exclude_from_weight_decay = exclude_from_weight_decay

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
    rng = np.random.default_rng(zlib.crc32((case.same_as or case.name).encode()))
    init_values = []
    for v in case.variables:
        dt = np_dtype(v.dtype)
        if v.init is not None:
            a = np.asarray(v.init(rng, v.shape)).astype(dt)
        else:
            a = rng.normal(0.0, 1.0, size=v.shape).astype(dt)
        init_values.append(a)

    steps = []
    for s in range(case.n_steps):
        grads = []
        scale = rng.uniform(*case.grad_scale) * case.grad_multiplier
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
    if g is None:
        return None
    if "dense" in g:
        return tf.constant(g["dense"])
    return tf.IndexedSlices(tf.constant(g["values"]), tf.constant(g["indices"]),
                            tf.constant(g["dense_shape"]))


# --------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------

def make_variables(case, init_values):
    out = []
    for v, a in zip(case.variables, init_values):
        if v.scope:
            with keras.name_scope(v.scope):
                kv = keras.Variable(a, name=v.name, dtype=v.dtype)
        else:
            kv = keras.Variable(a, name=v.name, dtype=v.dtype)
        assert kv.path == v.path, (kv.path, v.path)
        if v.constraint is not None:
            # keras.Variable takes no constraint argument; Layer.add_weight sets this attribute, and
            # BaseOptimizer.apply reads it (variable.constraint) after the update.
            kv.constraint = v.constraint()
        out.append(kv)
    return out


def iteration_variable(opt):
    """The variable `opt.iterations` is computed from (LossScaleOptimizer: the inner optimizer's)."""
    if isinstance(opt, O.LossScaleOptimizer):
        return opt.inner_optimizer._iterations
    return opt._iterations


def run_case(case):
    keras.backend.clear_session()  # auto names restart: "adam", "sgd", "loss_scale_optimizer", ...
    init_values, steps = build_data(case)
    kvars = make_variables(case, init_values)
    opt = case.make_opt()
    if case.exclude_from_weight_decay is not None:
        opt.exclude_from_weight_decay(var_names=case.exclude_from_weight_decay)
    input_opt = json_safe(O.serialize(opt))

    expected_steps = []
    for grads in steps:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Gradients do not exist for variables ..."
            opt.apply_gradients(list(zip([grad_tf(g) for g in grads], kvars)))
        expected_steps.append({"variables": [flat(v.numpy()) for v in kvars]})

    description = case.description
    if case.check is not None:
        description += case.check(case, steps)

    inp = {"optimizer": input_opt}
    if case.exclude_from_weight_decay is not None:
        inp["exclude_from_weight_decay"] = list(case.exclude_from_weight_decay)
    inp["variables"] = [
        {"name": v.name, "path": v.path, "shape": v.shape, "dtype": v.dtype, "value": flat(a),
         "constraint": json_safe(C.serialize(kv.constraint)) if kv.constraint is not None else None}
        for v, a, kv in zip(case.variables, init_values, kvars)]
    inp["steps"] = [{"gradients": [grad_json(g) for g in grads]} for grads in steps]

    it_var = iteration_variable(opt)
    fixture = {
        "case": case.name,
        "description": description,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "input": inp,
        "expected": {
            "steps": expected_steps,
            "iterations": int(opt.iterations),
            "raw_iterations": int(it_var.numpy()),
            "raw_iterations_variable": it_var.path,
            "weights": [flat(w.numpy()) for w in opt.variables],
            "weight_names": [w.path for w in opt.variables],
            "weight_shapes": [list(w.shape) for w in opt.variables],
            "weight_dtypes": [w.dtype for w in opt.variables],
            "config": json_safe(O.serialize(opt)),
        },
    }
    return fixture


def _raises(make_vars, make_opt, grads):
    keras.backend.clear_session()
    kvars = make_vars()
    opt = make_opt()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt.apply_gradients(list(zip(grads(), kvars)))


def _emb():
    return [keras.Variable(np.zeros((4, 2), np.float32), name="emb")]


def _sparse_grad():
    return [tf.IndexedSlices(tf.ones((2, 2)), tf.constant([0, 0], tf.int64), tf.constant([4, 2], tf.int64))]


# What Keras 3.15.1 refuses (see the module docstring); main() asserts that each still raises.
EXPECTED_ERRORS = [
    ("loss_scale_factor with an IndexedSlices gradient", TypeError,
     lambda: _raises(_emb, lambda: O.SGD(0.1, loss_scale_factor=2.0), _sparse_grad)),
    ("Muon on a float64 2-D variable (lr_adjust multiplies by a float32 sqrt)", tf.errors.InvalidArgumentError,
     lambda: _raises(lambda: [keras.Variable(np.ones((3, 3)), name="w", dtype="float64")],
                     lambda: O.Muon(0.01), lambda: [tf.ones((3, 3), tf.float64)])),
    ("a step with only None gradients", ValueError,
     lambda: _raises(_emb, lambda: O.SGD(0.1), lambda: [None])),
    ("MultiOptimizer: all variables of one inner optimizer without a gradient", ValueError,
     lambda: _raises(lambda: [keras.Variable(np.ones(2, np.float32), name="a"),
                              keras.Variable(np.ones(2, np.float32), name="b")],
                     lambda: O.MultiOptimizer(O.OptimizerMap(O.SGD(0.1), {"b": O.Adam(0.1)})),
                     lambda: [tf.ones(2), None])),
    ("two clip options", ValueError, lambda: O.SGD(0.1, clipnorm=1.0, clipvalue=1.0)),
    ("a '/' in a keras.Variable name", ValueError, lambda: keras.Variable(np.ones(2), name="dense/kernel")),
]


def check_expected_errors():
    for what, exc, fn in EXPECTED_ERRORS:
        try:
            fn()
        except exc:
            continue
        raise AssertionError(f"Keras no longer raises for {what}: add cases for it")


# --------------------------------------------------------------------------
# Clipping checks (make sure the clip really triggers on some steps only)
# --------------------------------------------------------------------------

def _gvals(g, mult):
    return np.asarray(g["dense"] if "dense" in g else g["values"], dtype=np.float64) / mult


def check_clipnorm(c, mult=1.0):
    def f(case, steps):
        norms = [np.sqrt((_gvals(g, mult) ** 2).sum()) for gr in steps for g in gr if g is not None]
        hit = sum(n > c for n in norms)
        assert 0 < hit < len(norms), (case.name, hit, len(norms))
        return f" [clipnorm={c} triggers on {hit} of {len(norms)} (step, tensor) gradients]"
    return f


def check_global_clipnorm(c):
    def f(case, steps):
        hit = sum(np.sqrt(sum((_gvals(g, 1.0) ** 2).sum() for g in gr if g is not None)) > c for gr in steps)
        assert 0 < hit < len(steps), (case.name, hit)
        return f" [global_clipnorm={c} triggers on {hit}/{len(steps)} steps]"
    return f


def check_clipvalue(c):
    def f(case, steps):
        hit = sum(int((np.abs(_gvals(g, 1.0)) > c).sum()) for gr in steps for g in gr if g is not None)
        tot = sum(_gvals(g, 1.0).size for gr in steps for g in gr if g is not None)
        assert 0 < hit < tot, (case.name, hit)
        return f" [clipvalue={c} clips {hit}/{tot} gradient entries]"
    return f
