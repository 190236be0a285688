"""Shared by the peer benchmarks: the workloads of `descent bench`, timing, and JSON-lines output.

Every peer prints one JSON object per line with the keys of the matching `descent bench ... --json` line,
plus "framework" and "variant". Timing follows Descent's: warm-up steps, then the best of 3 repeats of
a run of steps (ms per step).
"""
import argparse
import gzip
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(REPO, "Sources", "DescentKeras", "Resources", "digits.csv.gz")

# The optimizer workloads: (params, tensors). Same as `descent bench optimizer`.
OPTIMIZER_SHAPES = [(10_000_000, 10), (1_000_000, 1000)]
# The sparse workload: an Embedding table updated from looked-up rows.
SPARSE_ROWS, SPARSE_DIM, SPARSE_LOOKUPS, SPARSE_SEED = 1_000_000, 64, 4096, 42
# Keras defaults.
ADAM = dict(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
SGD_MOMENTUM = dict(lr=0.01, momentum=0.9)
ADAGRAD = dict(lr=0.001, initial_accumulator_value=0.1, epsilon=1e-7)
SGD_PLAIN = dict(lr=0.01)

# The Keras 3 family's workloads (`descent bench optimizer --optimizer <keras.optimizers config>`, issue 12):
# the dense shapes above (vectors), and 2-D matrices for Muon and Adafactor's factored rule:
# (rows, columns, count), by optimizer. Keras 3 defaults of each class.
KERAS3_MATRICES = {"adafactor": [(1024, 1024, 4), (1024, 4096, 2)], "muon": [(256, 256, 4), (1024, 1024, 4)]}
# torch.optim.Muon runs Newton-Schulz in bfloat16, which this CPU computes slowly (about 1.2 s per step of
# four 256x256 matrices, several minutes for 1024x1024): PyTorch runs only the smallest Muon workload.
TORCH_MUON_MATRICES = [(256, 256, 4)]
KERAS3_ADAMW = dict(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.004)
KERAS3_LION = dict(lr=0.001, beta_1=0.9, beta_2=0.99)
KERAS3_ADAFACTOR = dict(lr=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0)
KERAS3_MUON = dict(lr=0.001, weight_decay=0.004, momentum=0.95, ns_steps=5, rms_rate=0.2, epsilon=1e-7)
# Which optimizer runs on which workload: vectors (params, tensors) or matrices (rows, columns, count).
KERAS3_WORKLOADS = {"adamw": "vectors", "lion": "vectors", "adafactor": "both", "muon": "matrices"}


def keras3_workloads(name, args=None, matrices=None):
    """The workloads of one Keras 3 optimizer: [(params, tensors, matrix or None, shapes)]; `matrices`
    replaces its KERAS3_MATRICES."""
    kind = KERAS3_WORKLOADS[name]
    out = []
    if kind in ("vectors", "both"):
        for p, t in OPTIMIZER_SHAPES:
            if args is None or selected(f"{p}x{t}", args.shapes):
                out.append((p, t, None, [(n,) for n in split_sizes(p, t)]))
    if kind in ("matrices", "both"):
        for r, c, k in (KERAS3_MATRICES[name] if matrices is None else matrices):
            if args is None or selected(f"{r}x{c}", args.shapes):
                out.append((r * c * k, k, f"{r}x{c}", [(r, c)] * k))
    return out


_M64 = (1 << 64) - 1


def lookup_indices(count=SPARSE_LOOKUPS, rows=SPARSE_ROWS, seed=SPARSE_SEED):
    """The looked-up rows of `descent bench sparse` (BenchSparse.swift): SplitMix64 from `seed`,
    u = top 53 bits * 2**-53, row = floor((u*u)*(u*u) * rows). Identical indices in every framework."""
    x, out = seed, []
    for _ in range(count):
        x = (x + 0x9E3779B97F4A7C15) & _M64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z ^= z >> 31
        u = (z >> 11) * 2.0 ** -53
        u2 = u * u
        out.append(min(rows - 1, int(u2 * u2 * rows)))
    return out


def split_sizes(params, tensors):
    base = params // tensors
    return [base + (1 if i < params % tensors else 0) for i in range(tensors)]


def digits_train():
    """The first 1437 rows of the bundled UCI digits, as `descent train` uses: x float32 / 16, y int64."""
    import numpy as np
    rows = []
    with gzip.open(DIGITS, "rt") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append([int(v) for v in line.split(",")])
    a = np.array(rows[:1437])
    return (a[:, :64] / 16.0).astype(np.float32), a[:, 64].astype(np.int64)


def large_data(n=256 * 20, seed=7):
    """Synthetic data of the large MLP: normal inputs [n, 784], random labels in 0..9."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 784), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)


# The training workloads: name -> (layer sizes, batch, default timed steps).
TRAIN_MODELS = {"digits": ([64, 128, 64, 10], 32, 200), "large": ([784, 1024, 1024, 10], 256, 20)}


def train_data(name):
    return digits_train() if name == "digits" else large_data()


def best_ms(step, steps, warmup=3, repeats=3, sync=None, budget=None):
    """Best of `repeats` runs of `steps` calls of `step`, in ms per step. When one step is slow, fewer
    steps are run so that a repeat takes about `budget` seconds (at least 3 steps)."""
    for _ in range(warmup):
        step()
    if sync:
        sync()
    if budget is not None:
        t = time.perf_counter()
        step()
        if sync:
            sync()
        one = time.perf_counter() - t
        steps = max(3, min(steps, int(budget / max(one, 1e-9))))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        if sync:
            sync()
        best = min(best, (time.perf_counter() - t) / steps)
    return best * 1e3


def emit(**fields):
    print(json.dumps(fields), flush=True)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--only", default="optimizer,sparse,train",
                   help="comma-separated benches: optimizer, sparse, train, keras3 (not by default)")
    p.add_argument("--steps", type=int, default=50, help="timed optimizer steps per repeat (as descent bench optimizer)")
    p.add_argument("--budget", type=float, default=1.0,
                   help="seconds a repeat may take before fewer steps are run (slow variants)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads")
    p.add_argument("--variants", default="", help="comma-separated variant names to run (default: all)")
    p.add_argument("--shapes", default="", help="optimizer shapes to run, like 10000000x10 or (keras3 matrices) 1024x4096 (default: all)")
    p.add_argument("--optimizers", default="", help="keras3: optimizers to run: adamw, lion, adafactor, muon (default: all)")
    p.add_argument("--models", default="", help="training models to run: digits, large (default: both)")
    return p


def selected(value, allowed):
    """Whether `value` passes a comma-separated filter (empty: everything)."""
    return not allowed or value in allowed.split(",")


def shapes(args):
    return [(p, t) for p, t in OPTIMIZER_SHAPES if selected(f"{p}x{t}", args.shapes)]


def models(args):
    return {k: v for k, v in TRAIN_MODELS.items() if selected(k, args.models)}


def log(msg):
    print(msg, file=sys.stderr, flush=True)
