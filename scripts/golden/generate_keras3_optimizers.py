#!/usr/bin/env python3
"""Generate golden optimizer trajectories with real Keras 3.15.1 (TensorFlow backend).

The Keras 3 counterpart of generate_optimizers.py (the tf_keras legacy family). Every case clears the
Keras session (so auto-generated optimizer names restart at "adam", "sgd", ...), builds fresh
`keras.Variable`s (some inside `keras.name_scope(...)`, so their path is e.g. "dense/kernel") and a fresh
`keras.optimizers.*` optimizer, then runs one eager `opt.apply_gradients(list(zip(grads, vars)))` call
per step, and records every variable after every step plus the final optimizer state.

Output: Tests/Fixtures/keras3_optimizers/<case>.json and INDEX.json
(see scripts/golden/README.md for the format, and Tests/Fixtures/keras3_optimizers/NOTES.md for what
the runs showed).

Things Keras 3.15.1 refuses, left out on purpose (each checked here):
- `loss_scale_factor` with an IndexedSlices gradient: `BaseOptimizer.apply` computes `g / scale` with the
  Python operator, and `tf.IndexedSlices` has no `__truediv__` (TypeError) -- for every class except
  LossScaleOptimizer (it divides with `ops.divide`, which handles IndexedSlices) and MultiOptimizer (it
  overwrites its inner optimizers' loss_scale_factor with its own). So there is no sparse
  loss_scale_factor case for the base classes.
- Muon on a float64 2-D (Newton-Schulz) variable: `lr_adjust` multiplies by `ops.sqrt(max(n, m))`, a float32
  tensor (InvalidArgumentError). With rms_rate=None it works (case float64_muon_rms_rate_none).
- More than one of clipnorm / clipvalue / global_clipnorm (ValueError in the constructor).
- A step whose gradients are all None (ValueError "No gradients provided for any variable"); in a
  MultiOptimizer this also happens when all variables routed to one inner optimizer have None.
- `keras.Variable(name="dense/kernel")` (ValueError: no "/" in a name): paths with a slash come from
  `keras.name_scope("dense")`.
EXPECTED_ERRORS in keras3_golden_runner.py lists these; main() asserts that each still raises.

Usage:  /work/venv-tf/bin/python scripts/golden/generate_keras3_optimizers.py [--only SUBSTRING]
"""

import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import FIXTURES, write_json  # noqa: E402
from keras3_golden_runner import (N_STEPS, Case, Var, check_clipnorm, check_clipvalue,  # noqa: E402
                                  check_expected_errors, check_global_clipnorm, run_case)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

O = keras.optimizers
S = keras.optimizers.schedules
C = keras.constraints

OUT_DIR = os.path.join(FIXTURES, "keras3_optimizers")

CASES = []


def add(*args, **kwargs):
    c = Case(*args, **kwargs)
    assert c.name not in {x.name for x in CASES}, c.name
    CASES.append(c)
    return c


def plain_vars(dtype="float32", constraint0=None, constraint1=None, init0=None, init1=None, missing1=()):
    """var0 [2,4] and var1 [3] without a name scope (path = name)."""
    return [Var("var0", [2, 4], dtype, constraint=constraint0, init=init0),
            Var("var1", [3], dtype, constraint=constraint1, init=init1, missing=missing1)]


def layer_vars(dtype="float32", constraint0=None, constraint1=None, init0=None, init1=None):
    """dense/kernel [2,4] and dense/bias [4] (paths with a slash: slot names dense_kernel_<slot>)."""
    return [Var("kernel", [2, 4], dtype, constraint=constraint0, init=init0, scope="dense"),
            Var("bias", [4], dtype, constraint=constraint1, init=init1, scope="dense")]


def sparse_vars(dtype="float32", sparse_missing=()):
    """embedding/embeddings [6,3] with IndexedSlices gradients + dense/bias [3]."""
    return [Var("embeddings", [6, 3], dtype, kind="sparse", missing=sparse_missing, scope="embedding"),
            Var("bias", [3], dtype, scope="dense")]


def three_rank_vars(dtype="float32"):
    """rank 1, 2 and 3 (Adafactor factors the last two axes of rank >= 2)."""
    return [Var("bias", [3], dtype, scope="dense"),
            Var("kernel", [3, 4], dtype, scope="dense"),
            Var("var3d", [2, 2, 3], dtype)]


def muon_vars(dtype="float32", embedding_kind="dense"):
    """dense/kernel [4,4] (Newton-Schulz), dense_1/kernel [4,2] (tall: transposed inside Newton-Schulz),
    dense/bias [2] (1-D: AdamW path), embedding/embeddings [4,2] (AdamW path while exclude_embeddings)."""
    return [Var("kernel", [4, 4], dtype, scope="dense"),
            Var("kernel", [4, 2], dtype, scope="dense_1"),
            Var("bias", [2], dtype, scope="dense"),
            Var("embeddings", [4, 2], dtype, kind=embedding_kind, scope="embedding")]


def missing_vars(dtype="float32"):
    return [Var("a", [2, 3], dtype),
            Var("b", [3], dtype, missing={2, 3, 7}),
            Var("c", [2, 2], dtype, missing={0, 1, 2, 3, 4})]


MISSING_DESC = ("; vars a [2,3] always, b [3] None at steps 2,3,7, c [2,2] None at steps 0-4 (each step passes "
                "(None, var) pairs, so all slots exist from the first call)")


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------

# Per-optimizer options: a dense case (dense/kernel [3,4], dense/bias [4]) and a sparse case for each
# (every class accepts IndexedSlices in Keras 3.15.1 with the TF backend).
OPTIONS = [
    ("sgd", "SGD(learning_rate=0.1)", lambda: O.SGD(learning_rate=0.1)),
    ("sgd_momentum", "SGD(learning_rate=0.1, momentum=0.9)", lambda: O.SGD(learning_rate=0.1, momentum=0.9)),
    ("sgd_nesterov", "SGD(learning_rate=0.1, momentum=0.9, nesterov=True)",
     lambda: O.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("adam", "Adam(learning_rate=0.01)", lambda: O.Adam(learning_rate=0.01)),
    ("adam_amsgrad", "Adam(learning_rate=0.01, amsgrad=True)", lambda: O.Adam(learning_rate=0.01, amsgrad=True)),
    ("adamw", "AdamW(learning_rate=0.01) (weight_decay 0.004 by default)", lambda: O.AdamW(learning_rate=0.01)),
    ("adamw_wd_amsgrad", "AdamW(learning_rate=0.01, weight_decay=0.1, amsgrad=True, beta_1=0.8)",
     lambda: O.AdamW(learning_rate=0.01, weight_decay=0.1, amsgrad=True, beta_1=0.8)),
    ("adamax", "Adamax(learning_rate=0.05)", lambda: O.Adamax(learning_rate=0.05)),
    ("adagrad", "Adagrad(learning_rate=0.1)", lambda: O.Adagrad(learning_rate=0.1)),
    ("adagrad_init_eps", "Adagrad(learning_rate=0.1, initial_accumulator_value=0.5, epsilon=1e-4)",
     lambda: O.Adagrad(learning_rate=0.1, initial_accumulator_value=0.5, epsilon=1e-4)),
    ("adadelta_lr1", "Adadelta(learning_rate=1.0)", lambda: O.Adadelta(learning_rate=1.0)),
    ("adadelta_rho", "Adadelta(learning_rate=1.0, rho=0.8, epsilon=1e-5)",
     lambda: O.Adadelta(learning_rate=1.0, rho=0.8, epsilon=1e-5)),
    ("ftrl", "Ftrl(learning_rate=0.1)", lambda: O.Ftrl(learning_rate=0.1)),
    ("ftrl_l1_l2", "Ftrl(learning_rate=0.1, l1=0.3, l2=0.02)",
     lambda: O.Ftrl(learning_rate=0.1, l1_regularization_strength=0.3, l2_regularization_strength=0.02)),
    ("ftrl_power07_init03", "Ftrl(learning_rate=0.1, learning_rate_power=-0.7, initial_accumulator_value=0.3, l2=0.01)",
     lambda: O.Ftrl(learning_rate=0.1, learning_rate_power=-0.7, initial_accumulator_value=0.3,
                    l2_regularization_strength=0.01)),
    ("ftrl_shrinkage_beta", "Ftrl(learning_rate=0.1, l1=0.05, l2=0.01, l2_shrinkage=0.1, beta=0.5)",
     lambda: O.Ftrl(learning_rate=0.1, l1_regularization_strength=0.05, l2_regularization_strength=0.01,
                    l2_shrinkage_regularization_strength=0.1, beta=0.5)),
    ("ftrl_all", "Ftrl(learning_rate=0.2, learning_rate_power=-0.7, initial_accumulator_value=0.3, l1=0.01, "
     "l2=0.05, l2_shrinkage=0.05, beta=0.3)",
     lambda: O.Ftrl(learning_rate=0.2, learning_rate_power=-0.7, initial_accumulator_value=0.3,
                    l1_regularization_strength=0.01, l2_regularization_strength=0.05,
                    l2_shrinkage_regularization_strength=0.05, beta=0.3)),
    ("nadam", "Nadam(learning_rate=0.01)", lambda: O.Nadam(learning_rate=0.01)),
    ("nadam_beta", "Nadam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)",
     lambda: O.Nadam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)),
    ("rmsprop", "RMSprop(learning_rate=0.01)", lambda: O.RMSprop(learning_rate=0.01)),
    ("rmsprop_centered", "RMSprop(learning_rate=0.01, centered=True)",
     lambda: O.RMSprop(learning_rate=0.01, centered=True)),
    ("rmsprop_momentum", "RMSprop(learning_rate=0.01, momentum=0.5)",
     lambda: O.RMSprop(learning_rate=0.01, momentum=0.5)),
    ("rmsprop_momentum_centered", "RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5, centered=True)",
     lambda: O.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5, centered=True)),
    ("lion", "Lion(learning_rate=0.01)", lambda: O.Lion(learning_rate=0.01)),
    ("lion_beta", "Lion(learning_rate=0.01, beta_1=0.5, beta_2=0.9)",
     lambda: O.Lion(learning_rate=0.01, beta_1=0.5, beta_2=0.9)),
    ("lamb", "Lamb(learning_rate=0.01)", lambda: O.Lamb(learning_rate=0.01)),
    ("lamb_beta_eps", "Lamb(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-4)",
     lambda: O.Lamb(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-4)),
    ("adafactor", "Adafactor(learning_rate=0.1)", lambda: O.Adafactor(learning_rate=0.1)),
    ("schedule_free_adamw", "ScheduleFreeAdamW(learning_rate=0.01)",
     lambda: O.ScheduleFreeAdamW(learning_rate=0.01)),
    ("schedule_free_adamw_warmup", "ScheduleFreeAdamW(learning_rate=0.02, warmup_steps=5, beta_1=0.8)",
     lambda: O.ScheduleFreeAdamW(learning_rate=0.02, warmup_steps=5, beta_1=0.8)),
]

for _name, _desc, _make in OPTIONS:
    add(f"{_name}_dense", f"{_desc}; dense float32 vars dense/kernel [2,4] and dense/bias [4]", _make, layer_vars())
    add(f"{_name}_sparse",
        f"{_desc}; embedding/embeddings [6,3] with IndexedSlices gradients (duplicate, unsorted indices) + "
        f"dense dense/bias [3]", _make, sparse_vars())

# --- every class with all defaults ---------------------------------------------
DEFAULTS = [
    ("sgd_default", "SGD()", lambda: O.SGD()),
    ("adam_default", "Adam()", lambda: O.Adam()),
    ("adamw_default", "AdamW()", lambda: O.AdamW()),
    ("adamax_default", "Adamax()", lambda: O.Adamax()),
    ("adagrad_default", "Adagrad()", lambda: O.Adagrad()),
    ("adadelta_default", "Adadelta() (lr 0.001)", lambda: O.Adadelta()),
    ("ftrl_default", "Ftrl()", lambda: O.Ftrl()),
    ("nadam_default", "Nadam()", lambda: O.Nadam()),
    ("rmsprop_default", "RMSprop()", lambda: O.RMSprop()),
    ("lion_default", "Lion() (lr 1e-4)", lambda: O.Lion()),
    ("lamb_default", "Lamb()", lambda: O.Lamb()),
    ("adafactor_default", "Adafactor()", lambda: O.Adafactor()),
    ("schedule_free_adamw_default", "ScheduleFreeAdamW() (lr 0.0025)", lambda: O.ScheduleFreeAdamW()),
]
for _name, _desc, _make in DEFAULTS:
    add(_name, f"{_desc}, all defaults; dense vars var0 [2,4], var1 [3] (no name scope)", _make, plain_vars())

# --- Adafactor: rank 1/2/3, relative_step, clip_threshold, ... ---------------------
ADA_DESC = "; dense/bias [3] (rank 1: int32 placeholders for r and c), dense/kernel [3,4], var3d [2,2,3]"
add("adafactor_ranks", "Adafactor(learning_rate=0.1)" + ADA_DESC, lambda: O.Adafactor(learning_rate=0.1),
    three_rank_vars())
add("adafactor_relative_step_true_lr05",
    "Adafactor(learning_rate=0.5) (relative_step=True: lr = min(lr, 1/sqrt(t)) before rho_t = min(lr, 1/sqrt(t)))"
    + ADA_DESC, lambda: O.Adafactor(learning_rate=0.5), three_rank_vars())
add("adafactor_relative_step_false_lr05",
    "Adafactor(learning_rate=0.5, relative_step=False): the data of adafactor_relative_step_true_lr05 and the same "
    "trajectory bit for bit, since rho_t = min(lr, 1/sqrt(t)) either way" + ADA_DESC,
    lambda: O.Adafactor(learning_rate=0.5, relative_step=False), three_rank_vars(),
    same_as="adafactor_relative_step_true_lr05")
add("adafactor_clip_threshold", "Adafactor(learning_rate=0.1, clip_threshold=0.5)" + ADA_DESC,
    lambda: O.Adafactor(learning_rate=0.1, clip_threshold=0.5), three_rank_vars())
add("adafactor_options", "Adafactor(learning_rate=0.05, beta_2_decay=-0.5, epsilon_1=1e-20, epsilon_2=0.01, "
    "clip_threshold=2.0)" + ADA_DESC,
    lambda: O.Adafactor(learning_rate=0.05, beta_2_decay=-0.5, epsilon_1=1e-20, epsilon_2=0.01, clip_threshold=2.0),
    three_rank_vars())
add("adafactor_small_values", "Adafactor(learning_rate=0.1): initial values * 1e-4 so max(epsilon_2, rms(var)) "
    "is epsilon_2" + ADA_DESC, lambda: O.Adafactor(learning_rate=0.1),
    [Var("bias", [3], scope="dense", init=lambda r, s: r.normal(0, 1e-4, s)),
     Var("kernel", [3, 4], scope="dense", init=lambda r, s: r.normal(0, 1e-4, s))])

# --- Muon ---------------------------------------------------------------------------
MUON_DESC = ("; dense/kernel [4,4] and dense_1/kernel [4,2] (Newton-Schulz; [4,2] is transposed), dense/bias [2] "
             "and embedding/embeddings [4,2] (AdamW path)")
add("muon", "Muon(learning_rate=0.02)" + MUON_DESC, lambda: O.Muon(learning_rate=0.02), muon_vars())
add("muon_default", "Muon() (all defaults, lr 0.001, weight_decay 0.004, adam_weight_decay 0.004)" + MUON_DESC,
    lambda: O.Muon(), muon_vars(), n_steps=10)
add("muon_nesterov_false", "Muon(learning_rate=0.02, nesterov=False)" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, nesterov=False), muon_vars(), n_steps=10)
add("muon_exclude_layers", "Muon(learning_rate=0.02, exclude_layers=['dense_1']): dense_1/kernel goes through "
    "AdamW (re.search on the path)" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, exclude_layers=["dense_1"]), muon_vars(), n_steps=10)
add("muon_exclude_embeddings_false", "Muon(learning_rate=0.02, exclude_embeddings=False): the [4,3] embedding goes "
    "through Newton-Schulz" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, exclude_embeddings=False), muon_vars(), n_steps=10)
add("muon_rms_rate_none", "Muon(learning_rate=0.02, rms_rate=None): no sqrt(max(n,m))*rms_rate scaling" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, rms_rate=None), muon_vars(), n_steps=10)
add("muon_rms_rate_ns3", "Muon(learning_rate=0.02, rms_rate=0.5, ns_steps=3, momentum=0.9)" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, rms_rate=0.5, ns_steps=3, momentum=0.9), muon_vars(), n_steps=10)
add("muon_adam_options", "Muon(learning_rate=0.02, adam_lr_ratio=0.5, adam_beta_1=0.8, adam_beta_2=0.99, "
    "epsilon=1e-5, adam_weight_decay=0.05, weight_decay=0.1, muon_a=3.0, muon_b=-4.0, muon_c=1.5)" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, adam_lr_ratio=0.5, adam_beta_1=0.8, adam_beta_2=0.99, epsilon=1e-5,
                   adam_weight_decay=0.05, weight_decay=0.1, muon_a=3.0, muon_b=-4.0, muon_c=1.5),
    muon_vars(), n_steps=10)
add("muon_sparse", "Muon(learning_rate=0.02); embedding/embeddings [4,3] gets IndexedSlices (duplicate indices), "
    "AdamW path" + MUON_DESC, lambda: O.Muon(learning_rate=0.02), muon_vars(embedding_kind="sparse"), n_steps=10)
add("muon_sparse_newton_schulz", "Muon(learning_rate=0.02, exclude_embeddings=False); embedding/embeddings [4,3] "
    "gets IndexedSlices and goes through Newton-Schulz" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, exclude_embeddings=False), muon_vars(embedding_kind="sparse"), n_steps=10)
add("muon_weight_decay_none", "Muon(learning_rate=0.02, weight_decay=None, adam_weight_decay=None)" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, weight_decay=None, adam_weight_decay=None), muon_vars(), n_steps=10)
add("muon_exclude_bias", "Muon(learning_rate=0.02, weight_decay=0.1); exclude_from_weight_decay(var_names=['bias'])"
    + MUON_DESC, lambda: O.Muon(learning_rate=0.02, weight_decay=0.1), muon_vars(), n_steps=10,
    exclude_from_weight_decay=["bias"])

# --- LossScaleOptimizer ----------------------------------------------------------------
add("lso_adam", "LossScaleOptimizer(Adam(learning_rate=0.01), initial_scale=1024.0); gradients are the scaled "
    "ones (x1024)", lambda: O.LossScaleOptimizer(O.Adam(learning_rate=0.01), initial_scale=1024.0),
    layer_vars(), grad_multiplier=1024.0)
add("lso_default", "LossScaleOptimizer(SGD(learning_rate=0.1, momentum=0.9)) (initial_scale 32768, "
    "dynamic_growth_steps 2000); gradients x32768",
    lambda: O.LossScaleOptimizer(O.SGD(learning_rate=0.1, momentum=0.9)), plain_vars(), grad_multiplier=32768.0)
add("lso_nonfinite", "LossScaleOptimizer(Adam(learning_rate=0.01), initial_scale=256.0, dynamic_growth_steps=4); "
    "gradients x256; +inf in var 0's gradient at step 3 and NaN in var 1's at step 7: those steps are skipped "
    "(no inner update, inner iterations not advanced), the scale is halved and step_counter reset",
    lambda: O.LossScaleOptimizer(O.Adam(learning_rate=0.01), initial_scale=256.0, dynamic_growth_steps=4),
    layer_vars(), grad_multiplier=256.0, poison=[(3, 0, 2, float("inf")), (7, 1, 0, float("nan"))])
add("lso_growth3", "LossScaleOptimizer(SGD(learning_rate=0.1, momentum=0.5), initial_scale=4.0, "
    "dynamic_growth_steps=3): the scale doubles after every 3 finite steps (4, 8, 16, 32); gradients x4",
    lambda: O.LossScaleOptimizer(O.SGD(learning_rate=0.1, momentum=0.5), initial_scale=4.0, dynamic_growth_steps=3),
    layer_vars(), grad_multiplier=4.0)
add("lso_sparse", "LossScaleOptimizer(Adam(learning_rate=0.01), initial_scale=64.0, dynamic_growth_steps=5); "
    "sparse embedding (IndexedSlices divided by the scale with ops.divide); gradients x64",
    lambda: O.LossScaleOptimizer(O.Adam(learning_rate=0.01), initial_scale=64.0, dynamic_growth_steps=5),
    sparse_vars(), grad_multiplier=64.0)
add("lso_missing", "LossScaleOptimizer(RMSprop(learning_rate=0.01, momentum=0.5), initial_scale=16.0, "
    "dynamic_growth_steps=4); gradients x16" + MISSING_DESC,
    lambda: O.LossScaleOptimizer(O.RMSprop(learning_rate=0.01, momentum=0.5), initial_scale=16.0,
                                 dynamic_growth_steps=4), missing_vars(), grad_multiplier=16.0)
add("lso_inner_accum2_ema", "LossScaleOptimizer(Adam(learning_rate=0.01, gradient_accumulation_steps=2, "
    "use_ema=True, ema_momentum=0.9), initial_scale=8.0, dynamic_growth_steps=3); gradients x8",
    lambda: O.LossScaleOptimizer(O.Adam(learning_rate=0.01, gradient_accumulation_steps=2, use_ema=True,
                                        ema_momentum=0.9), initial_scale=8.0, dynamic_growth_steps=3),
    layer_vars(), grad_multiplier=8.0)
add("lso_inner_clipnorm_sched", "LossScaleOptimizer(SGD(ExponentialDecay(0.1, 4, 0.5), clipnorm=1.0), "
    "initial_scale=2.0, dynamic_growth_steps=5): unscale before clipping; gradients x2",
    lambda: O.LossScaleOptimizer(O.SGD(learning_rate=S.ExponentialDecay(0.1, 4, 0.5), clipnorm=1.0),
                                 initial_scale=2.0, dynamic_growth_steps=5),
    layer_vars(), grad_multiplier=2.0, check=check_clipnorm(1.0, mult=2.0))


# --- MultiOptimizer -------------------------------------------------------------------
def multi_vars(embedding_kind="dense"):
    return [Var("kernel", [2, 3], scope="dense"), Var("bias", [3], scope="dense"),
            Var("embeddings", [4, 2], kind=embedding_kind, scope="embedding"), Var("var0", [2])]


MULTI_DESC = "; vars dense/kernel [2,3], dense/bias [3], embedding/embeddings [4,2], var0 [2]"
add("multi", "MultiOptimizer(OptimizerMap(SGD(learning_rate=0.1, momentum=0.9), {'dense/.*': Adam(learning_rate="
    "0.01)})): dense/* -> Adam, the rest -> the default SGD" + MULTI_DESC,
    lambda: O.MultiOptimizer(O.OptimizerMap(O.SGD(learning_rate=0.1, momentum=0.9),
                                            {"dense/.*": O.Adam(learning_rate=0.01)})), multi_vars())
add("multi_three", "MultiOptimizer(OptimizerMap(RMSprop(learning_rate=0.01), {'dense/bias': Lion(learning_rate=0.01), "
    "'dense/.*': Adam(learning_rate=0.01), 'embed.*': Adagrad(learning_rate=0.1)})): the exact key 'dense/bias' wins "
    "over the regex 'dense/.*'" + MULTI_DESC,
    lambda: O.MultiOptimizer(O.OptimizerMap(O.RMSprop(learning_rate=0.01), {
        "dense/bias": O.Lion(learning_rate=0.01), "dense/.*": O.Adam(learning_rate=0.01),
        "embed.*": O.Adagrad(learning_rate=0.1)})), multi_vars())
add("multi_sparse", "MultiOptimizer(OptimizerMap(SGD(learning_rate=0.1), {'embedding/.*': Adam(learning_rate=0.01)})); "
    "sparse embedding/embeddings" + MULTI_DESC,
    lambda: O.MultiOptimizer(O.OptimizerMap(O.SGD(learning_rate=0.1), {"embedding/.*": O.Adam(learning_rate=0.01)})),
    multi_vars("sparse"))
add("multi_loss_scale_factor", "MultiOptimizer(OptimizerMap(SGD(learning_rate=0.1, momentum=0.9), {'dense/.*': "
    "Adam(learning_rate=0.01, loss_scale_factor=2.0)}), loss_scale_factor=8.0): the MultiOptimizer's factor "
    "overwrites the inner ones; gradients x8" + MULTI_DESC,
    lambda: O.MultiOptimizer(O.OptimizerMap(O.SGD(learning_rate=0.1, momentum=0.9),
                                            {"dense/.*": O.Adam(learning_rate=0.01, loss_scale_factor=2.0)}),
                             loss_scale_factor=8.0), multi_vars(), grad_multiplier=8.0)
add("multi_inner_options", "MultiOptimizer(OptimizerMap(AdamW(learning_rate=0.01, weight_decay=0.1, use_ema=True, "
    "ema_momentum=0.9), {'dense/.*': SGD(learning_rate=0.1, momentum=0.9, clipnorm=1.0, "
    "gradient_accumulation_steps=2)}))" + MULTI_DESC,
    lambda: O.MultiOptimizer(O.OptimizerMap(
        O.AdamW(learning_rate=0.01, weight_decay=0.1, use_ema=True, ema_momentum=0.9),
        {"dense/.*": O.SGD(learning_rate=0.1, momentum=0.9, clipnorm=1.0, gradient_accumulation_steps=2)})),
    multi_vars())
add("multi_missing", "MultiOptimizer(OptimizerMap(SGD(learning_rate=0.1, momentum=0.9), {'dense/.*': "
    "Adam(learning_rate=0.01)})); dense/bias None at steps 1,2,6 and var0 None at steps 0,4 (each inner optimizer "
    "always has one gradient: all-None for one inner optimizer raises)" + MULTI_DESC,
    lambda: O.MultiOptimizer(O.OptimizerMap(O.SGD(learning_rate=0.1, momentum=0.9),
                                            {"dense/.*": O.Adam(learning_rate=0.01)})),
    [Var("kernel", [2, 3], scope="dense"), Var("bias", [3], scope="dense", missing={1, 2, 6}),
     Var("embeddings", [4, 2], scope="embedding"), Var("var0", [2], missing={0, 4})])
add("multi_named", "MultiOptimizer(OptimizerMap(Adam(learning_rate=0.01, name='base'), {'var.*': SGD(learning_rate=0.1,"
    " name='fast')}), name='multi')" + MULTI_DESC,
    lambda: O.MultiOptimizer(O.OptimizerMap(O.Adam(learning_rate=0.01, name="base"),
                                            {"var.*": O.SGD(learning_rate=0.1, name="fast")}), name="multi"),
    multi_vars())

# --- weight decay -----------------------------------------------------------------------
add("sgd_momentum_weight_decay", "SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.05)",
    lambda: O.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.05), layer_vars())
add("adam_weight_decay", "Adam(learning_rate=0.01, weight_decay=0.1)",
    lambda: O.Adam(learning_rate=0.01, weight_decay=0.1), layer_vars())
add("lion_weight_decay", "Lion(learning_rate=0.01, weight_decay=0.5)",
    lambda: O.Lion(learning_rate=0.01, weight_decay=0.5), layer_vars())
add("rmsprop_weight_decay_sparse", "RMSprop(learning_rate=0.01, weight_decay=0.2); sparse (weight decay touches "
    "every row)", lambda: O.RMSprop(learning_rate=0.01, weight_decay=0.2), sparse_vars())
add("adafactor_weight_decay", "Adafactor(learning_rate=0.1, weight_decay=0.1)" + ADA_DESC,
    lambda: O.Adafactor(learning_rate=0.1, weight_decay=0.1), three_rank_vars())
add("adamw_exclude_bias", "AdamW(learning_rate=0.01, weight_decay=0.1); exclude_from_weight_decay(var_names=['bias']) "
    "(matched with re.search on variable.name): dense/bias is not decayed",
    lambda: O.AdamW(learning_rate=0.01, weight_decay=0.1), layer_vars(), exclude_from_weight_decay=["bias"])
add("lamb_exclude_bias_embed", "Lamb(learning_rate=0.01, weight_decay=0.1); exclude_from_weight_decay(var_names="
    "['bias', 'embed']): dense/bias and embedding/embeddings are not decayed, var0 is",
    lambda: O.Lamb(learning_rate=0.01, weight_decay=0.1),
    [Var("kernel", [2, 3], scope="dense"), Var("bias", [3], scope="dense"),
     Var("embeddings", [4, 2], scope="embedding"), Var("var0", [2])],
    exclude_from_weight_decay=["bias", "embed"])
add("sgd_exclude_scope_no_match", "SGD(learning_rate=0.1, weight_decay=0.1); exclude_from_weight_decay(var_names="
    "['dense']): matches nothing, because the pattern is searched in variable.name ('kernel', 'bias'), not the path",
    lambda: O.SGD(learning_rate=0.1, weight_decay=0.1), layer_vars(), exclude_from_weight_decay=["dense"])
add("schedule_free_adamw_weight_decay", "ScheduleFreeAdamW(learning_rate=0.01, weight_decay=0.1)",
    lambda: O.ScheduleFreeAdamW(learning_rate=0.01, weight_decay=0.1), layer_vars())

# --- EMA ----------------------------------------------------------------------------------
add("adam_ema", "Adam(learning_rate=0.01, use_ema=True, ema_momentum=0.9) (no overwrite: the variables follow "
    "Adam, the averages are in the weights)", lambda: O.Adam(learning_rate=0.01, use_ema=True, ema_momentum=0.9),
    layer_vars())
add("sgd_momentum_ema_overwrite3", "SGD(learning_rate=0.1, momentum=0.9, use_ema=True, ema_momentum=0.8, "
    "ema_overwrite_frequency=3): variables overwritten by their average after steps 2, 5, 8 (0-based)",
    lambda: O.SGD(learning_rate=0.1, momentum=0.9, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=3),
    layer_vars())
add("rmsprop_ema_default_momentum", "RMSprop(learning_rate=0.01, use_ema=True) (ema_momentum 0.99); sparse",
    lambda: O.RMSprop(learning_rate=0.01, use_ema=True), sparse_vars())
add("adam_ema_overwrite2_accum2", "Adam(learning_rate=0.01, use_ema=True, ema_momentum=0.7, ema_overwrite_frequency=2, "
    "gradient_accumulation_steps=2): the average moves on every call, the overwrite uses the floor-divided iterations",
    lambda: O.Adam(learning_rate=0.01, use_ema=True, ema_momentum=0.7, ema_overwrite_frequency=2,
                   gradient_accumulation_steps=2), layer_vars())
add("muon_ema_overwrite4", "Muon(learning_rate=0.02, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=4)"
    + MUON_DESC, lambda: O.Muon(learning_rate=0.02, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=4),
    muon_vars(), n_steps=10)
add("lion_ema_missing", "Lion(learning_rate=0.01, use_ema=True, ema_momentum=0.8)" + MISSING_DESC +
    "; the averages of variables without a gradient still move", lambda: O.Lion(learning_rate=0.01, use_ema=True,
                                                                               ema_momentum=0.8), missing_vars())

# --- gradient accumulation ------------------------------------------------------------------
add("sgd_momentum_accum2", "SGD(learning_rate=0.1, momentum=0.9, gradient_accumulation_steps=2)",
    lambda: O.SGD(learning_rate=0.1, momentum=0.9, gradient_accumulation_steps=2), layer_vars())
add("adam_accum3", "Adam(learning_rate=0.01, gradient_accumulation_steps=3): iterations = raw // 3",
    lambda: O.Adam(learning_rate=0.01, gradient_accumulation_steps=3), layer_vars(), n_steps=11)
add("adam_accum2_schedule", "Adam(ExponentialDecay(0.02, decay_steps=2, decay_rate=0.5), gradient_accumulation_steps=2)"
    ": the schedule sees the raw iteration count", lambda: O.Adam(
        learning_rate=S.ExponentialDecay(0.02, decay_steps=2, decay_rate=0.5), gradient_accumulation_steps=2),
    layer_vars())
add("sgd_accum2_clipnorm", "SGD(learning_rate=0.1, clipnorm=1.0, gradient_accumulation_steps=2): the averaged gradient "
    "is clipped", lambda: O.SGD(learning_rate=0.1, clipnorm=1.0, gradient_accumulation_steps=2), layer_vars())
add("adam_accum2_missing", "Adam(learning_rate=0.01, gradient_accumulation_steps=2)" + MISSING_DESC +
    "; a variable without a gradient on an update step loses what it accumulated (every accumulator is reset)",
    lambda: O.Adam(learning_rate=0.01, gradient_accumulation_steps=2), missing_vars())
add("adam_accum2_sparse", "Adam(learning_rate=0.01, gradient_accumulation_steps=2); sparse (the accumulation densifies "
    "the IndexedSlices)", lambda: O.Adam(learning_rate=0.01, gradient_accumulation_steps=2), sparse_vars())
add("adagrad_accum3_weight_decay", "Adagrad(learning_rate=0.1, weight_decay=0.1, gradient_accumulation_steps=3): "
    "decay only on update steps", lambda: O.Adagrad(learning_rate=0.1, weight_decay=0.1, gradient_accumulation_steps=3),
    layer_vars())
add("nadam_accum2", "Nadam(learning_rate=0.01, gradient_accumulation_steps=2)",
    lambda: O.Nadam(learning_rate=0.01, gradient_accumulation_steps=2), layer_vars())
add("lion_accum3", "Lion(learning_rate=0.01, gradient_accumulation_steps=3)",
    lambda: O.Lion(learning_rate=0.01, gradient_accumulation_steps=3), layer_vars())
add("muon_accum2", "Muon(learning_rate=0.02, gradient_accumulation_steps=2)" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.02, gradient_accumulation_steps=2), muon_vars(), n_steps=10)
add("schedule_free_adamw_accum2", "ScheduleFreeAdamW(learning_rate=0.01, warmup_steps=3, gradient_accumulation_steps=2)",
    lambda: O.ScheduleFreeAdamW(learning_rate=0.01, warmup_steps=3, gradient_accumulation_steps=2), layer_vars())

# --- loss_scale_factor -------------------------------------------------------------------------
add("sgd_momentum_loss_scale_factor", "SGD(learning_rate=0.1, momentum=0.9, loss_scale_factor=128.0); gradients x128",
    lambda: O.SGD(learning_rate=0.1, momentum=0.9, loss_scale_factor=128.0), layer_vars(), grad_multiplier=128.0)
add("adam_loss_scale_factor_clipnorm", "Adam(learning_rate=0.01, loss_scale_factor=16.0, clipnorm=1.0): unscaled "
    "before clipping; gradients x16", lambda: O.Adam(learning_rate=0.01, loss_scale_factor=16.0, clipnorm=1.0),
    layer_vars(), grad_multiplier=16.0, check=check_clipnorm(1.0, mult=16.0))
add("ftrl_loss_scale_factor_accum2", "Ftrl(learning_rate=0.1, loss_scale_factor=4.0, gradient_accumulation_steps=2); "
    "gradients x4", lambda: O.Ftrl(learning_rate=0.1, loss_scale_factor=4.0, gradient_accumulation_steps=2),
    layer_vars(), grad_multiplier=4.0)

# --- clipping -------------------------------------------------------------------------------------
CLIPS = [
    ("adam_clipnorm_dense", "Adam(learning_rate=0.01, clipnorm=2.0)", lambda: O.Adam(learning_rate=0.01, clipnorm=2.0),
     layer_vars, check_clipnorm(2.0)),
    ("sgd_momentum_clipnorm_dense", "SGD(learning_rate=0.1, momentum=0.9, clipnorm=1.5)",
     lambda: O.SGD(learning_rate=0.1, momentum=0.9, clipnorm=1.5), layer_vars, check_clipnorm(1.5)),
    ("sgd_clipvalue_dense", "SGD(learning_rate=0.1, clipvalue=0.5)", lambda: O.SGD(learning_rate=0.1, clipvalue=0.5),
     layer_vars, check_clipvalue(0.5)),
    ("adam_clipvalue_dense", "Adam(learning_rate=0.01, clipvalue=0.8)", lambda: O.Adam(learning_rate=0.01, clipvalue=0.8),
     layer_vars, check_clipvalue(0.8)),
    ("adam_global_clipnorm_dense", "Adam(learning_rate=0.01, global_clipnorm=3.0)",
     lambda: O.Adam(learning_rate=0.01, global_clipnorm=3.0), layer_vars, check_global_clipnorm(3.0)),
    ("sgd_global_clipnorm_dense", "SGD(learning_rate=0.1, global_clipnorm=2.5)",
     lambda: O.SGD(learning_rate=0.1, global_clipnorm=2.5), layer_vars, check_global_clipnorm(2.5)),
    ("lion_clipvalue_dense", "Lion(learning_rate=0.01, clipvalue=0.3)", lambda: O.Lion(learning_rate=0.01, clipvalue=0.3),
     layer_vars, check_clipvalue(0.3)),
    ("adafactor_global_clipnorm_dense", "Adafactor(learning_rate=0.1, global_clipnorm=2.0)",
     lambda: O.Adafactor(learning_rate=0.1, global_clipnorm=2.0), layer_vars, check_global_clipnorm(2.0)),
    ("muon_clipnorm_dense", "Muon(learning_rate=0.02, clipnorm=2.0)", lambda: O.Muon(learning_rate=0.02, clipnorm=2.0),
     muon_vars, check_clipnorm(2.0)),
    ("sgd_clipnorm_sparse", "SGD(learning_rate=0.1, clipnorm=1.0); sparse (tf.clip_by_norm on the IndexedSlices: "
     "norm over the un-summed rows)", lambda: O.SGD(learning_rate=0.1, clipnorm=1.0), sparse_vars, check_clipnorm(1.0)),
    ("adagrad_clipnorm_sparse", "Adagrad(learning_rate=0.1, clipnorm=1.0); sparse",
     lambda: O.Adagrad(learning_rate=0.1, clipnorm=1.0), sparse_vars, check_clipnorm(1.0)),
    ("sgd_momentum_clipvalue_sparse", "SGD(learning_rate=0.1, momentum=0.9, clipvalue=0.5); sparse (rows clipped "
     "before the duplicates are summed)", lambda: O.SGD(learning_rate=0.1, momentum=0.9, clipvalue=0.5), sparse_vars,
     check_clipvalue(0.5)),
    ("adam_global_clipnorm_sparse", "Adam(learning_rate=0.01, global_clipnorm=2.0); sparse",
     lambda: O.Adam(learning_rate=0.01, global_clipnorm=2.0), sparse_vars, check_global_clipnorm(2.0)),
]
for _name, _desc, _make, _vars, _check in CLIPS:
    add(_name, _desc, _make, _vars(), check=_check, n_steps=10 if _vars is muon_vars else N_STEPS)
add("sgd_clipnorm_zero", "SGD(learning_rate=0.1, clipnorm=0.0): a clipnorm of 0 means no clipping (the config "
    "keeps 0.0); the data of sgd_dense and the same trajectory bit for bit",
    lambda: O.SGD(learning_rate=0.1, clipnorm=0.0), layer_vars(), same_as="sgd_dense")
add("adam_clipvalue_zero", "Adam(learning_rate=0.01, clipvalue=0.0): no clipping; the data of adam_dense and the same "
    "trajectory bit for bit", lambda: O.Adam(learning_rate=0.01, clipvalue=0.0), layer_vars(), same_as="adam_dense")
add("sgd_global_clipnorm_zero", "SGD(learning_rate=0.1, global_clipnorm=0.0): no clipping; the data of sgd_dense and "
    "the same trajectory bit for bit", lambda: O.SGD(learning_rate=0.1, global_clipnorm=0.0), layer_vars(),
    same_as="sgd_dense")

# --- learning-rate schedules ------------------------------------------------------------------
SCHEDULES = [
    ("sched_exponential_sgd", "SGD(ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5))",
     lambda: O.SGD(learning_rate=S.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5))),
    ("sched_exponential_staircase_adam", "Adam(ExponentialDecay(0.05, decay_steps=4, decay_rate=0.6, staircase=True))",
     lambda: O.Adam(learning_rate=S.ExponentialDecay(0.05, decay_steps=4, decay_rate=0.6, staircase=True))),
    ("sched_piecewise_sgd_momentum", "SGD(PiecewiseConstantDecay([4, 8], [0.1, 0.05, 0.01]), momentum=0.9)",
     lambda: O.SGD(learning_rate=S.PiecewiseConstantDecay([4, 8], [0.1, 0.05, 0.01]), momentum=0.9)),
    ("sched_polynomial_lion", "Lion(PolynomialDecay(0.02, decay_steps=8, end_learning_rate=0.001, power=2.0))",
     lambda: O.Lion(learning_rate=S.PolynomialDecay(0.02, decay_steps=8, end_learning_rate=0.001, power=2.0))),
    ("sched_polynomial_cycle_sgd", "SGD(PolynomialDecay(0.1, decay_steps=5, end_learning_rate=0.01, power=2.0, "
     "cycle=True))", lambda: O.SGD(learning_rate=S.PolynomialDecay(0.1, decay_steps=5, end_learning_rate=0.01,
                                                                  power=2.0, cycle=True))),
    ("sched_inverse_time_rmsprop", "RMSprop(InverseTimeDecay(0.02, decay_steps=3, decay_rate=0.5), momentum=0.5)",
     lambda: O.RMSprop(learning_rate=S.InverseTimeDecay(0.02, decay_steps=3, decay_rate=0.5), momentum=0.5)),
    ("sched_inverse_time_staircase_adam", "Adam(InverseTimeDecay(0.05, decay_steps=3, decay_rate=0.5, staircase=True))",
     lambda: O.Adam(learning_rate=S.InverseTimeDecay(0.05, decay_steps=3, decay_rate=0.5, staircase=True))),
    ("sched_cosine_adam", "Adam(CosineDecay(0.05, decay_steps=10, alpha=0.1))",
     lambda: O.Adam(learning_rate=S.CosineDecay(0.05, decay_steps=10, alpha=0.1))),
    ("sched_cosine_warmup_adamw", "AdamW(CosineDecay(0.0, decay_steps=8, warmup_target=0.05, warmup_steps=4), "
     "weight_decay=0.1): the weight decay uses the scheduled rate too",
     lambda: O.AdamW(learning_rate=S.CosineDecay(0.0, decay_steps=8, warmup_target=0.05, warmup_steps=4),
                     weight_decay=0.1)),
    ("sched_cosine_warmup_sgd", "SGD(CosineDecay(0.01, decay_steps=8, alpha=0.05, warmup_target=0.1, warmup_steps=3))",
     lambda: O.SGD(learning_rate=S.CosineDecay(0.01, decay_steps=8, alpha=0.05, warmup_target=0.1, warmup_steps=3))),
    ("sched_cosine_restarts_adagrad", "Adagrad(CosineDecayRestarts(0.1, first_decay_steps=3, t_mul=2.0, m_mul=0.5, "
     "alpha=0.1)); restarts at 3, 9", lambda: O.Adagrad(learning_rate=S.CosineDecayRestarts(
         0.1, first_decay_steps=3, t_mul=2.0, m_mul=0.5, alpha=0.1))),
    ("sched_cosine_restarts_tmul1_adam", "Adam(CosineDecayRestarts(0.05, first_decay_steps=4, t_mul=1.0, m_mul=0.8))",
     lambda: O.Adam(learning_rate=S.CosineDecayRestarts(0.05, first_decay_steps=4, t_mul=1.0, m_mul=0.8))),
    ("sched_exponential_adafactor", "Adafactor(ExponentialDecay(0.5, decay_steps=3, decay_rate=0.5)) (a schedule is "
     "callable: the relative_step clamp is skipped, rho_t still clamps)",
     lambda: O.Adafactor(learning_rate=S.ExponentialDecay(0.5, decay_steps=3, decay_rate=0.5))),
    ("sched_piecewise_schedule_free_adamw", "ScheduleFreeAdamW(PiecewiseConstantDecay([5], [0.02, 0.005]), "
     "warmup_steps=3)", lambda: O.ScheduleFreeAdamW(learning_rate=S.PiecewiseConstantDecay([5], [0.02, 0.005]),
                                                    warmup_steps=3)),
    ("sched_cosine_lamb", "Lamb(CosineDecay(0.05, decay_steps=12), weight_decay=0.05)",
     lambda: O.Lamb(learning_rate=S.CosineDecay(0.05, decay_steps=12), weight_decay=0.05)),
    ("sched_exponential_ftrl", "Ftrl(ExponentialDecay(0.2, decay_steps=4, decay_rate=0.7), l1=0.01)",
     lambda: O.Ftrl(learning_rate=S.ExponentialDecay(0.2, decay_steps=4, decay_rate=0.7),
                    l1_regularization_strength=0.01)),
    ("sched_inverse_time_nadam", "Nadam(InverseTimeDecay(0.02, decay_steps=2, decay_rate=0.3))",
     lambda: O.Nadam(learning_rate=S.InverseTimeDecay(0.02, decay_steps=2, decay_rate=0.3))),
]
for _name, _desc, _make in SCHEDULES:
    add(_name, f"{_desc}; dense float32 vars dense/kernel [2,4] and dense/bias [4]", _make, layer_vars())
add("sched_exponential_muon", "Muon(ExponentialDecay(0.05, decay_steps=3, decay_rate=0.5))" + MUON_DESC,
    lambda: O.Muon(learning_rate=S.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.5)), muon_vars(), n_steps=10)

# --- constraints (dense) ---------------------------------------------------------------------
_pos = lambda r, s: r.uniform(0.0, 0.3, s)  # noqa: E731
add("constraint_nonneg_adam", "Adam(learning_rate=0.05); NonNeg on both vars (initial values in [0, 0.3))",
    lambda: O.Adam(learning_rate=0.05), layer_vars(constraint0=C.NonNeg, constraint1=C.NonNeg, init0=_pos, init1=_pos))
add("constraint_maxnorm_sgd_momentum", "SGD(learning_rate=0.1, momentum=0.9); MaxNorm(2, axis=0) on both vars",
    lambda: O.SGD(learning_rate=0.1, momentum=0.9),
    layer_vars(constraint0=lambda: C.MaxNorm(2, axis=0), constraint1=lambda: C.MaxNorm(2, axis=0),
               init0=lambda r, s: r.normal(0.0, 1.3, s)))
add("constraint_unitnorm_adamw", "AdamW(learning_rate=0.05, weight_decay=0.1); UnitNorm(axis=1) on dense/kernel",
    lambda: O.AdamW(learning_rate=0.05, weight_decay=0.1), layer_vars(constraint0=lambda: C.UnitNorm(axis=1)))
add("constraint_minmaxnorm_sgd", "SGD(learning_rate=0.2); MinMaxNorm(0.5, 1.5, rate=0.7, axis=0) on dense/kernel, "
    "NonNeg on dense/bias", lambda: O.SGD(learning_rate=0.2),
    layer_vars(constraint0=lambda: C.MinMaxNorm(0.5, 1.5, rate=0.7, axis=0), constraint1=C.NonNeg,
               init0=lambda r, s: r.normal(0.0, 1.0, s) * np.array([0.1, 0.6, 1.2, 2.5])))
add("constraint_nonneg_lion_ema", "Lion(learning_rate=0.05, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=3);"
    " NonNeg on both vars: the constraint runs after the EMA overwrite",
    lambda: O.Lion(learning_rate=0.05, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=3),
    layer_vars(constraint0=C.NonNeg, constraint1=C.NonNeg, init0=_pos, init1=_pos))
add("constraint_maxnorm_muon", "Muon(learning_rate=0.05); MaxNorm(1.0, axis=0) on dense/kernel [4,4]" + MUON_DESC,
    lambda: O.Muon(learning_rate=0.05),
    [Var("kernel", [4, 4], scope="dense", constraint=lambda: C.MaxNorm(1.0, axis=0)),
     Var("bias", [4], scope="dense")])
add("constraint_nonneg_sparse_adagrad", "Adagrad(learning_rate=0.1); NonNeg on the sparse embedding",
    lambda: O.Adagrad(learning_rate=0.1),
    [Var("embeddings", [6, 3], kind="sparse", scope="embedding", constraint=C.NonNeg, init=_pos),
     Var("bias", [3], scope="dense")])
add("constraint_nonneg_accum2_sgd", "SGD(learning_rate=0.2, gradient_accumulation_steps=2); NonNeg on dense/kernel: "
    "the constraint runs on every call, also on accumulation-only steps",
    lambda: O.SGD(learning_rate=0.2, gradient_accumulation_steps=2),
    layer_vars(constraint0=C.NonNeg, init0=lambda r, s: r.normal(0.0, 1.0, s)))

# --- missing gradients -------------------------------------------------------------------------
MISSING = [
    ("missing_adam", "Adam(learning_rate=0.01)", lambda: O.Adam(learning_rate=0.01)),
    ("missing_sgd_momentum", "SGD(learning_rate=0.1, momentum=0.9)", lambda: O.SGD(learning_rate=0.1, momentum=0.9)),
    ("missing_ftrl", "Ftrl(learning_rate=0.1, l1=0.01)",
     lambda: O.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01)),
    ("missing_nadam", "Nadam(learning_rate=0.01)", lambda: O.Nadam(learning_rate=0.01)),
    ("missing_rmsprop_momentum_centered", "RMSprop(learning_rate=0.01, momentum=0.5, centered=True)",
     lambda: O.RMSprop(learning_rate=0.01, momentum=0.5, centered=True)),
    ("missing_adadelta", "Adadelta(learning_rate=1.0)", lambda: O.Adadelta(learning_rate=1.0)),
    ("missing_lamb", "Lamb(learning_rate=0.01)", lambda: O.Lamb(learning_rate=0.01)),
    ("missing_adafactor", "Adafactor(learning_rate=0.1)", lambda: O.Adafactor(learning_rate=0.1)),
    ("missing_schedule_free_adamw", "ScheduleFreeAdamW(learning_rate=0.01)",
     lambda: O.ScheduleFreeAdamW(learning_rate=0.01)),
    ("missing_adamw_weight_decay", "AdamW(learning_rate=0.01, weight_decay=0.2): no decay without a gradient",
     lambda: O.AdamW(learning_rate=0.01, weight_decay=0.2)),
    ("missing_muon", "Muon(learning_rate=0.02)", lambda: O.Muon(learning_rate=0.02)),
]
for _name, _desc, _make in MISSING:
    add(_name, _desc + MISSING_DESC, _make, missing_vars())
add("missing_adam_sparse", "Adam(learning_rate=0.01); sparse embedding/embeddings None at steps 0,1,6,7 + dense/bias",
    lambda: O.Adam(learning_rate=0.01), sparse_vars(sparse_missing={0, 1, 6, 7}))

# --- float64 --------------------------------------------------------------------------------------
F64 = "; float64 vars dense/kernel [2,4] and dense/bias [4] (the learning_rate variable stays float32)"
add("float64_adam", "Adam(learning_rate=0.01)" + F64, lambda: O.Adam(learning_rate=0.01), layer_vars("float64"))
add("float64_sgd_momentum", "SGD(learning_rate=0.1, momentum=0.9)" + F64,
    lambda: O.SGD(learning_rate=0.1, momentum=0.9), layer_vars("float64"))
add("float64_rmsprop_momentum", "RMSprop(learning_rate=0.01, rho=0.8, momentum=0.3)" + F64,
    lambda: O.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.3), layer_vars("float64"))
add("float64_ftrl_shrinkage", "Ftrl(learning_rate=0.1, l1=0.01, l2=0.01, l2_shrinkage=0.1, beta=0.1)" + F64,
    lambda: O.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.01,
                   l2_shrinkage_regularization_strength=0.1, beta=0.1), layer_vars("float64"))
add("float64_nadam", "Nadam(learning_rate=0.01)" + F64 + "; the u_product variable is float64 (first var's dtype)",
    lambda: O.Nadam(learning_rate=0.01), layer_vars("float64"))
add("float64_adafactor", "Adafactor(learning_rate=0.1)" + ADA_DESC + "; float64",
    lambda: O.Adafactor(learning_rate=0.1), three_rank_vars("float64"))
add("float64_lamb", "Lamb(learning_rate=0.01, weight_decay=0.01)" + F64,
    lambda: O.Lamb(learning_rate=0.01, weight_decay=0.01), layer_vars("float64"))
add("float64_lion", "Lion(learning_rate=0.01)" + F64, lambda: O.Lion(learning_rate=0.01), layer_vars("float64"))
add("float64_schedule_free_adamw", "ScheduleFreeAdamW(learning_rate=0.01, warmup_steps=4)" + F64,
    lambda: O.ScheduleFreeAdamW(learning_rate=0.01, warmup_steps=4), layer_vars("float64"))
add("float64_muon_adamw_path", "Muon(learning_rate=0.02); float64 dense/bias [4] and var3d [2,2,3] (AdamW path only: "
    "a float64 2-D variable makes Muon raise)", lambda: O.Muon(learning_rate=0.02),
    [Var("bias", [4], "float64", scope="dense"), Var("var3d", [2, 2, 3], "float64")])
add("float64_muon_rms_rate_none", "Muon(learning_rate=0.02, rms_rate=None)" + MUON_DESC + "; float64 (with the "
    "default rms_rate a float64 2-D variable raises)", lambda: O.Muon(learning_rate=0.02, rms_rate=None),
    muon_vars("float64"), n_steps=10)
add("float64_adam_sparse", "Adam(learning_rate=0.01); float64 sparse embedding [6,3] + bias [3]",
    lambda: O.Adam(learning_rate=0.01), sparse_vars("float64"))
add("float64_sched_cosine_sgd", "SGD(CosineDecay(0.1, decay_steps=10, alpha=0.1), momentum=0.9)" + F64 +
    "; the schedule is computed in float32 and cast", lambda: O.SGD(
        learning_rate=S.CosineDecay(0.1, decay_steps=10, alpha=0.1), momentum=0.9), layer_vars("float64"))
add("mixed_dtype_nadam", "Nadam(learning_rate=0.01); var0 float64 [3] then var1 float32 [4]: u_product takes the "
    "first variable's dtype (float64) and is cast for var1",
    lambda: O.Nadam(learning_rate=0.01), [Var("var0", [3], "float64"), Var("var1", [4], "float32")])


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="generate only cases whose name contains this")
    args = ap.parse_args()

    check_expected_errors()
    os.makedirs(OUT_DIR, exist_ok=True)
    if not args.only:
        for old in glob.glob(os.path.join(OUT_DIR, "*.json")):
            os.remove(old)

    total = 0
    done = {}
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        fx = run_case(case)
        done[case.name] = fx
        if case.same_as in done:
            assert fx["expected"]["steps"] == done[case.same_as]["expected"]["steps"], (case.name, case.same_as)
        total += write_json(os.path.join(OUT_DIR, case.name + ".json"), fx, allow_nonfinite=bool(case.poison))

    if not args.only:
        index = {"tensorflow": tf.__version__, "keras": keras.__version__, "cases": [c.name for c in CASES]}
        total += write_json(os.path.join(OUT_DIR, "INDEX.json"), index)
    print(f"wrote {len(CASES) if not args.only else 'some'} cases, {total} bytes, to {OUT_DIR}")


if __name__ == "__main__":
    main()
