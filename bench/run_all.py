#!/usr/bin/env python3
"""Builds Descent in release, runs every Descent benchmark and every peer (PyTorch, TensorFlow/tf-keras,
JAX/optax) in one run on this machine, and writes BENCHMARKS.md.

    bench/run_all.sh                      # or: make bench
    python3 bench/run_all.py --peers torch,tf,jax --output BENCHMARKS.md

The peers run from virtual environments outside the repository, in --venv-root (default: the
repository's parent folder): venv-torch, venv-tf, venv-jax. A missing one is created with pip from
bench/peers/requirements-*.txt (see bench/README.md for the CPU-only PyTorch route). Raw results go to
bench/results.jsonl.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
DESCENT = os.path.join(REPO, ".build-release", "release", "descent")
C_CEILING = os.path.join(REPO, ".build-release", "c_fused_update")
C_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-pthread"]
SGD_MOMENTUM = '{"class_name": "SGD", "config": {"momentum": 0.9}}'

PEERS = {
    "torch": ("venv-torch", "torch_bench.py", "PyTorch"),
    "tf": ("venv-tf", "tf_bench.py", "TensorFlow / tf-keras"),
    "jax": ("venv-jax", "jax_bench.py", "JAX / optax"),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, text=True, capture_output=True, **kw).stdout


class Run:
    def __init__(self):
        self.results = []   # (tag, dict)
        self.commands = []  # (what, command line, seconds)
        self.failures = []
        self.round = 0

    def json_lines(self, tag, argv, env=None):
        """Runs argv, keeps its JSON lines (tagged), returns them."""
        line = " ".join(shlex.quote(a) for a in argv)
        log(f"$ {line}")
        start = time.time()
        proc = subprocess.run(argv, text=True, capture_output=True, env=env, cwd=REPO)
        seconds = time.time() - start
        self.commands.append((tag, line, seconds))
        rows = []
        for out in proc.stdout.splitlines():
            out = out.strip()
            if out.startswith("{"):
                try:
                    rows.append(json.loads(out))
                except json.JSONDecodeError:
                    pass
        if proc.returncode != 0:
            self.failures.append((line, proc.returncode, proc.stderr[-2000:]))
            log(f"  FAILED ({proc.returncode}): {proc.stderr[-800:]}")
        for r in rows:
            r["round"] = self.round
            self.results.append((tag, r))
        log(f"  {len(rows)} results in {seconds:.1f}s")
        return rows


def ensure_venv(root, peer):
    venv, _, _ = PEERS[peer]
    path = os.path.join(root, venv)
    python = os.path.join(path, "bin", "python")
    if os.path.exists(python):
        return python
    log(f"creating {path}")
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    pip = [os.path.join(path, "bin", "pip"), "install", "-q"]
    if peer == "torch":
        # CPU-only wheel first (a local wheel directory configured for pip, when there is one);
        # otherwise PyPI's default wheel, which pulls ~3 GB of CUDA libraries but runs on the CPU.
        if subprocess.run(pip + ["numpy", "torch==2.13.0+cpu"]).returncode != 0:
            subprocess.run(pip + ["numpy", "torch"], check=True)
    else:
        subprocess.run(pip + ["-r", os.path.join(BENCH, "peers", f"requirements-{peer}.txt")], check=True)
    return python


def machine_info():
    info = {}
    cpuinfo = open("/proc/cpuinfo").read()
    m = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    info["cpu"] = m.group(1).strip() if m else platform.processor()
    try:
        lscpu = sh(["lscpu"])
        fam = re.search(r"CPU family:\s*(\d+)", lscpu)
        model = re.search(r"Model:\s*(\d+)", lscpu)
        hyp = re.search(r"Hypervisor vendor:\s*(.*)", lscpu)
        l3 = re.search(r"L3 cache:\s*(.*)", lscpu)
        info["cpu"] += f" (family {fam.group(1) if fam else '?'}, model {model.group(1) if model else '?'}"
        info["cpu"] += f"{', ' + hyp.group(1).strip() + ' VM' if hyp else ''})"
        info["l3"] = l3.group(1).strip() if l3 else "?"
    except Exception:
        info["l3"] = "?"
    flags = re.search(r"flags\s*:\s*(.*)", cpuinfo).group(1).split()
    info["simd"] = ", ".join(f for f in ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"] if f in flags)
    info["cores"] = os.cpu_count()
    mem = re.search(r"MemTotal:\s*(\d+) kB", open("/proc/meminfo").read())
    info["memory"] = f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?"
    info["kernel"] = platform.release()
    try:
        info["os"] = "Debian " + open("/etc/debian_version").read().strip()
    except OSError:
        info["os"] = platform.platform()
    try:
        info["swift"] = sh(["swift", "--version"]).splitlines()[0].strip()
    except Exception:
        info["swift"] = "?"
    try:
        info["openblas"] = sh("dpkg-query -W -f '${Version}' libopenblas0-pthread")
    except Exception:
        info["openblas"] = "?"
    info["python"] = platform.python_version()
    return info


# ---------------------------------------------------------------------------------------------- report

def fmt(x, digits=3):
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def ratio(peer_ms, descent_ms):
    if peer_ms is None or descent_ms is None:
        return "—"
    return f"**{peer_ms / descent_ms:.2f}×**"


def find(results, **match):
    out = []
    for tag, r in results:
        if all((tag if k == "tag" else r.get(k)) == v for k, v in match.items()):
            out.append(r)
    return out


def one(results, **match):
    rows = find(results, **match)
    return rows[0] if rows else None


METRICS = {"ms_per_step", "mparams_per_s", "gb_per_s", "steps_per_s", "ms_per_epoch", "first_epoch_ms", "round"}


def aggregate(results):
    """One row per measurement over all rounds: the best (lowest ms per step; highest GB/s for bandwidth),
    with `worst` (the slowest round's ms per step, or lowest GB/s) and `rounds` added."""
    groups = {}
    for tag, r in results:
        if r.get("bench") == "meta":
            continue
        # A head-to-head run measures the same workload again: it counts as one more round.
        tag = {"h2h-bandwidth": "descent-bandwidth"}.get(tag, tag[4:] if tag.startswith("h2h-") else tag)
        key = (tag,) + tuple(sorted((k, json.dumps(v)) for k, v in r.items() if k not in METRICS))
        groups.setdefault(key, (tag, []))[1].append(r)
    out = []
    for tag, rows in groups.values():
        if rows[0].get("bench") == "bandwidth":
            best = dict(max(rows, key=lambda r: r["gb_per_s"]))
            best["worst"] = min(r["gb_per_s"] for r in rows)
        else:
            best = dict(min(rows, key=lambda r: r["ms_per_step"]))
            best["worst"] = max(r["ms_per_step"] for r in rows)
        best["rounds"] = len(rows)
        out.append((tag, best))
    return out


def spread(r):
    """The slowest round's time as a percentage above the best."""
    if r.get("rounds", 1) < 2:
        return ""
    return f"+{100 * (r['worst'] / r['ms_per_step'] - 1):.0f}%"


def report(run, info, versions, args, started, seconds):
    R = aggregate(run.results)
    L = []
    w = L.append
    w("# Benchmarks\n")
    w("Generated by `bench/run_all.sh` (`make bench`), which builds Descent in release (`make release`: "
      "`swift build -c release -Xswiftc -target-cpu -Xswiftc native`), runs every Descent benchmark and every peer "
      "below **in one run on this machine**, and writes this file. Ratios compare numbers from the same run. "
      f"Run started {started} UTC and took {seconds / 60:.1f} min. Raw results: `bench/results.jsonl`.\n")
    w(f"Each framework's benchmarks ran in {args.rounds} rounds (Descent, then each peer, then again), so that "
      "a slow spell of this shared VM does not fall on one framework only. Within a round a time is the best of 3 "
      "repeats of a run of steps after warm-up steps; the tables give the best round (ms per step) and how much "
      "slower the slowest round was (\"slowest\"). The head-to-head pairs below re-run Descent's and PyTorch's "
      "dense-update and large-MLP benchmarks; each pair counts as one more round of those rows (best of "
      f"{args.rounds} + {args.pairs} runs for both sides). All frameworks use both cores. A speed-up is the peer's time "
      "divided by Descent's (above 1: Descent is faster).\n")

    w("## Machine\n")
    w("| | |\n|---|---|")
    w(f"| CPU | {info['cpu']}, {info['simd']} |")
    w(f"| cores | {info['cores']} (L3 {info['l3']}) |")
    w(f"| memory | {info['memory']} |")
    w(f"| OS | {info['os']}, Linux {info['kernel']} |")
    w(f"| Descent | {info['swift']}, OpenBLAS {info['openblas']} (pthread), `-target-cpu native` |")
    for key, label in [("torch", "PyTorch"), ("tf", "TensorFlow / tf-keras"), ("jax", "JAX / optax")]:
        if key in versions:
            w(f"| {label} | {versions[key]} (Python {info['python']}) |")
    w("")

    # ------------------------------------------------------------------ dense optimizers
    w("## Dense optimizer update (`descent bench optimizer`)\n")
    w("`applyGradients` of one optimizer over float32 variables with constant gradients; Keras defaults "
      "(Adam lr 0.001, ε 1e-7; SGD lr 0.01, momentum 0.9). Bytes per parameter: Adam reads parameter, gradient, "
      "m, v and writes parameter, m, v = 28; SGD with momentum 20.\n")
    w("| workload | framework | variant | ms/step | slowest | Mparam/s | GB/s | Descent speed-up |")
    w("|---|---|---|---:|---:|---:|---:|---:|")
    for params, tensors in [(10_000_000, 10), (1_000_000, 1000)]:
        for opt in ["adam", "sgd_momentum"]:
            d = one(R, tag=f"descent-{opt}", params=params, tensors=tensors)
            label = f"{'Adam' if opt == 'adam' else 'SGD momentum'}, {params / 1e6:g}M params in {tensors} tensors"
            if d:
                w(f"| {label} | **Descent** | fused multi-tensor | **{fmt(d['ms_per_step'])}** | {spread(d)} | "
                  f"{fmt(d['mparams_per_s'])} | {fmt(d['gb_per_s'])} | |")
            for r in find(R, bench="c_ceiling", optimizer=opt, params=params, tensors=tensors):
                w(f"| {label} | C ceiling | `bench/c/fused_update.c`, gcc {' '.join(C_FLAGS[:3])}, pthreads | "
                  f"{fmt(r['ms_per_step'])} | {spread(r)} | {fmt(r['mparams_per_s'])} | {fmt(r['gb_per_s'])} | "
                  f"{ratio(r['ms_per_step'], d and d['ms_per_step'])} |")
            for fw in ["pytorch", "tensorflow", "jax"]:
                for r in find(R, bench="optimizer", framework=fw, optimizer=opt, params=params, tensors=tensors):
                    w(f"| {label} | {fw} | {r['variant']} | {fmt(r['ms_per_step'])} | {spread(r)} | {fmt(r['mparams_per_s'])} | "
                      f"{fmt(r['gb_per_s'])} | {ratio(r['ms_per_step'], d and d['ms_per_step'])} |")
    w("")

    # ------------------------------------------------------------------ bandwidth limit
    bw = {}
    for r in find(R, bench="bandwidth"):
        bw[r["kernel"]] = max(bw.get(r["kernel"], 0), r["gb_per_s"])
    w("## Memory bandwidth and the limit it sets (`descent bench bandwidth`)\n")
    w("STREAM-style kernels in Swift over 16M floats per array, both threads, best of 10 (and the best of 3 "
      "invocations per round): copy `c = a` (8 bytes/element counted), triad `a = b + 3c` (12), and an in-place update "
      "`a = a + 3b` (12), which moves exactly the bytes it counts, as an optimizer does.\n")
    worst = {r["kernel"]: r["worst"] for r in find(R, bench="bandwidth")}
    w("| kernel | GB/s (best) | GB/s (worst invocation) |\n|---|---:|---:|")
    for k in ["copy", "triad", "update"]:
        if k in bw:
            w(f"| {k} | {fmt(bw[k])} | {fmt(worst[k])} |")
    w("")
    w("The limit is the bandwidth divided by the bytes per parameter (Gparam/s ceiling); Descent's percentage "
      "of it uses the 10M-parameter, 10-tensor run above.\n")
    w("| optimizer | bytes/param | limit from triad | limit from update | Descent | % of triad limit | % of update limit |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    limits = {}
    for opt, bpp, name in [("adam", 28, "Adam"), ("sgd_momentum", 20, "SGD momentum")]:
        d = one(R, tag=f"descent-{opt}", params=10_000_000, tensors=10)
        if d and "triad" in bw:
            lt, lu = bw["triad"] / bpp, bw.get("update", 0) / bpp
            g = d["mparams_per_s"] / 1e3
            limits[opt] = (g, lt, lu)
            w(f"| {name} | {bpp} | {lt:.2f} Gparam/s | {lu:.2f} Gparam/s | {g:.2f} Gparam/s | "
              f"{100 * g / lt:.0f}% | {100 * g / lu:.0f}% |")
    w("")

    # ------------------------------------------------------------------ sparse
    w("## Sparse update of an embedding table (`descent bench sparse`)\n")
    w("A 1,000,000 × 64 float32 table; each step applies a gradient of 4096 looked-up rows (the same indices in "
      "every framework: SplitMix64, seed 42, skewed to low rows, 3686 unique). Keras defaults (Adagrad lr 0.001, "
      "initial accumulator 0.1; SGD lr 0.01, no momentum). **Keras' legacy Adam sparse path decays m and v and "
      "moves the variable on every row** (as TensorFlow does), so its cost is that of a full-table pass; Descent "
      "keeps those semantics. PyTorch's `SparseAdam` is lazy (only looked-up rows move: different results), shown "
      "for reference; the like-for-like PyTorch row is fused Adam on the densified gradient. JAX has no sparse "
      "gradients: the rows are scatter-added into a dense gradient and the whole table is updated.\n")
    w("| optimizer | framework | variant | ms/step | slowest | Descent speed-up |")
    w("|---|---|---|---:|---:|---:|")
    for opt in ["adam", "adagrad", "sgd"]:
        d = one(R, tag="descent-sparse", optimizer=opt)
        if d:
            w(f"| {opt} | **Descent** | IndexedSlices | **{fmt(d['ms_per_step'])}** | {spread(d)} | |")
        for fw in ["pytorch", "tensorflow", "jax"]:
            for r in find(R, bench="sparse", framework=fw, optimizer=opt):
                w(f"| {opt} | {fw} | {r['variant']} | {fmt(r['ms_per_step'])} | {spread(r)} | "
                  f"{ratio(r['ms_per_step'], d and d['ms_per_step'])} |")
    w("")

    # ------------------------------------------------------------------ training
    w("## Training steps (`descent bench train`)\n")
    w("digits: 64→128→64→10 (ReLU), batch 32, the bundled UCI digits (1437 training images, 45 steps per epoch); "
      "large: 784→1024→1024→10 (ReLU), batch 256, synthetic data (5120 samples, 20 steps per epoch). "
      "SparseCategoricalCrossentropy from logits, Adam (Keras defaults). A step is forward, tape (autograd), "
      "backward and the optimizer update. `train_step` times the step on batches sliced beforehand "
      "(Descent: `Sequential.trainStep`; PyTorch: eager `zero_grad/forward/backward/step`; JAX: one jitted step); "
      "`fit` times whole epochs of `fit` (shuffling, batching; best epoch after the first) divided by its steps.\n")
    w("| model | framework | variant | mode | ms/step | slowest | steps/s | Descent speed-up |")
    w("|---|---|---|---|---:|---:|---:|---:|")
    for model in ["digits", "large"]:
        ds = {r["mode"]: r for r in find(R, tag="descent-train", model=model)}
        for mode in ["train_step", "fit"]:
            d = ds.get(mode)
            if d:
                w(f"| {model} | **Descent** | `Sequential.{'trainStep' if mode == 'train_step' else 'fit'}` | {mode} | "
                  f"**{fmt(d['ms_per_step'])}** | {spread(d)} | {fmt(1000 / d['ms_per_step'])} | |")
        for fw in ["pytorch", "tensorflow", "jax"]:
            for r in find(R, bench="train", framework=fw, model=model):
                d = ds.get(r["mode"], ds.get("train_step"))
                extra = f" ({fmt(r['ms_per_epoch'])} ms/epoch)" if "ms_per_epoch" in r else ""
                w(f"| {model} | {fw} | {r['variant']} | {r['mode']}{extra} | {fmt(r['ms_per_step'])} | {spread(r)} | "
                  f"{fmt(1000 / r['ms_per_step'])} | {ratio(r['ms_per_step'], d and d['ms_per_step'])} |")
    w("")

    # ------------------------------------------------------------------ head-to-head
    raw = run.results
    h2h = {}

    def pair_values(descent_tag, peer_match, descent_match=None, bw_kernel=None, bpp=None, peer_tag="h2h-torch"):
        out = []
        for i in range(args.pairs):
            d = [r for t, r in raw if t == descent_tag and r["round"] == i
                 and all(r.get(k) == v for k, v in (descent_match or {}).items())]
            if bw_kernel:
                b = [r["gb_per_s"] for t, r in raw if t == "h2h-bandwidth" and r["round"] == i and r["kernel"] == bw_kernel]
                if d and b:
                    out.append(d[0]["mparams_per_s"] / 1e3 / (b[0] / bpp))
                continue
            p = [r for t, r in raw if t == peer_tag and r["round"] == i
                 and all(r.get(k) == v for k, v in peer_match.items())]
            if d and p:
                out.append(p[0]["ms_per_step"] / d[0]["ms_per_step"])
        return out

    def med(xs):
        xs = sorted(xs)
        n = len(xs)
        return None if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)

    if any(t == "h2h-torch" for t, _ in raw):
        w("## Head-to-head (interleaved pairs)\n")
        w(f"For the targets' comparisons, {args.pairs} pairs run back to back: `descent bench bandwidth`, Descent's "
          "benchmark, then PyTorch's, seconds apart, so that both sides of a ratio see the same state of this "
          "shared VM. Each ratio is PyTorch's time ÷ Descent's (or the C ceiling's time ÷ Descent's, or Descent's "
          "Gparam/s ÷ that pair's bandwidth limit); the median and the range over the pairs. The C ceiling is "
          "`bench/c/fused_update.c`: the same fused updates in plain C on the same threads and buffers.\n")
        w("| comparison | median | min | max | per pair |\n|---|---:|---:|---:|---|")
        BIG, SMALL = dict(params=10_000_000), dict(params=1_000_000)
        rows = [
            ("adam_fused", "Adam 10M/10 vs PyTorch Adam fused=True", "h2h-descent-adam",
             dict(bench="optimizer", optimizer="adam", variant="fused=True", params=10_000_000), BIG, None, None),
            ("sgdm_fused", "SGD momentum 10M/10 vs PyTorch SGD fused=True", "h2h-descent-sgd_momentum",
             dict(bench="optimizer", optimizer="sgd_momentum", variant="fused=True", params=10_000_000), BIG, None, None),
            ("adam_fused_small", "Adam 1M/1000 vs PyTorch Adam fused=True", "h2h-descent-adam",
             dict(bench="optimizer", optimizer="adam", variant="fused=True", params=1_000_000), SMALL, None, None),
            ("sgdm_fused_small", "SGD momentum 1M/1000 vs PyTorch SGD fused=True", "h2h-descent-sgd_momentum",
             dict(bench="optimizer", optimizer="sgd_momentum", variant="fused=True", params=1_000_000), SMALL, None, None),
            ("adam_triad", "Adam 10M/10, share of the triad limit (28 B/param)", "h2h-descent-adam", {}, BIG, "triad", 28),
            ("adam_update", "Adam 10M/10, share of the in-place update limit", "h2h-descent-adam", {}, BIG, "update", 28),
            ("sgdm_triad", "SGD momentum 10M/10, share of the triad limit (20 B/param)", "h2h-descent-sgd_momentum", {}, BIG, "triad", 20),
            ("sgdm_update", "SGD momentum 10M/10, share of the in-place update limit", "h2h-descent-sgd_momentum", {}, BIG, "update", 20),
            ("adam_c", "Adam 10M/10 vs the C ceiling (above 1: Descent faster)", "h2h-descent-adam",
             dict(bench="c_ceiling", optimizer="adam"), BIG, None, None, "h2h-c-ceiling"),
            ("sgdm_c", "SGD momentum 10M/10 vs the C ceiling", "h2h-descent-sgd_momentum",
             dict(bench="c_ceiling", optimizer="sgd_momentum"), BIG, None, None, "h2h-c-ceiling"),
            ("large_eager", "large MLP train_step vs PyTorch eager (default Adam)", "h2h-descent-train",
             dict(bench="train", variant="eager (Adam default: for-loop)"), dict(mode="train_step"), None, None),
            ("large_fused", "large MLP train_step vs PyTorch eager (Adam fused=True)", "h2h-descent-train",
             dict(bench="train", variant="eager (Adam fused=True)"), dict(mode="train_step"), None, None),
        ]
        for key, label, dtag, pm, dm, kernel, bpp, *peer in rows:
            vals = pair_values(dtag, pm, dm, kernel, bpp, *peer)
            if not vals:
                continue
            h2h[key] = med(vals)
            unit = (lambda v: f"{100 * v:.0f}%") if kernel else (lambda v: f"{v:.2f}×")
            w(f"| {label} | **{unit(med(vals))}** | {unit(min(vals))} | {unit(max(vals))} | "
              f"{', '.join(unit(v) for v in vals)} |")
        w("")

    # ------------------------------------------------------------------ targets
    w("## Targets\n")
    w("Dense and large-MLP targets use the head-to-head medians when they were run (the best-round ratio of the "
      "tables above in brackets).\n")
    w("| target | measured | met |\n|---|---|---|")

    def target(label, value, goal, text):
        met = "—" if value is None else ("yes" if value >= goal else "**no**")
        w(f"| {label} | {text if value is not None else 'not measured'} | {met} |")

    for opt, name, short in [("adam", "Adam", "adam"), ("sgd_momentum", "SGD momentum", "sgdm")]:
        d = one(R, tag=f"descent-{opt}", params=10_000_000, tensors=10)
        p = one(R, bench="optimizer", framework="pytorch", variant="fused=True", optimizer=opt, params=10_000_000, tensors=10)
        best = p["ms_per_step"] / d["ms_per_step"] if d and p else None
        v = h2h.get(f"{short}_fused", best)
        target(f"{name}, 10M params / 10 tensors: ≥ 1.0× PyTorch fused", v, 1.0,
               f"{v:.2f}× median of pairs ({best:.2f}× best rounds)" if v and best else "")
        if opt in limits:
            g, lt, lu = limits[opt]
            vt, vu = h2h.get(f"{short}_triad", g / lt), h2h.get(f"{short}_update", g / lu)
            target(f"{name}, 10M / 10: ≥ 80% of the bandwidth limit (triad)", vt, 0.8,
                   f"{100 * vt:.0f}% of the triad limit, {100 * vu:.0f}% of the in-place update limit "
                   f"(medians of pairs; best rounds: {100 * g / lt:.0f}% / {100 * g / lu:.0f}%)")
        d = one(R, tag=f"descent-{opt}", params=1_000_000, tensors=1000)
        p = one(R, bench="optimizer", framework="pytorch", variant="fused=True", optimizer=opt, params=1_000_000, tensors=1000)
        best = p["ms_per_step"] / d["ms_per_step"] if d and p else None
        v = h2h.get(f"{short}_fused_small", best)
        target(f"{name}, 1M params / 1000 tensors: ≥ 5× PyTorch fused", v, 5.0,
               f"{v:.2f}× median of pairs ({best:.2f}× best rounds)" if v and best else "")
    def vs_torch(model):
        d = one(R, tag="descent-train", model=model, mode="train_step")
        p = one(R, bench="train", framework="pytorch", model=model, variant="eager (Adam default: for-loop)")
        f = one(R, bench="train", framework="pytorch", model=model, variant="eager (Adam fused=True)")
        v = p["ms_per_step"] / d["ms_per_step"] if d and p else None
        vf = f["ms_per_step"] / d["ms_per_step"] if d and f else None
        if model == "large" and "large_eager" in h2h:
            text = (f"{h2h['large_eager']:.2f}× PyTorch's default Adam, {h2h['large_fused']:.2f}× with fused=True "
                    f"(medians of pairs; best rounds {v:.2f}× / {vf:.2f}×)")
            return h2h["large_eager"], text
        text = f"{v:.2f}× PyTorch's default Adam, {vf:.2f}× with fused=True (train_step)" if v and vf else ""
        return v, text

    v, text = vs_torch("digits")
    target("digits MLP step: ≥ 3× PyTorch eager", v, 3.0, text)
    d = one(R, tag="descent-train", model="digits", mode="fit")
    p = one(R, bench="train", framework="tensorflow", model="digits", variant="fit, optimizer='adam'")
    v = p["ms_per_step"] / d["ms_per_step"] if d and p else None
    target("digits MLP step: ≥ 3× tf-keras fit", v, 3.0, f"{v:.2f}× (fit vs fit, per step)" if v else "")
    v, text = vs_torch("large")
    target("large MLP step: ≥ 1.0× PyTorch eager", v, 1.0, text)
    w("")

    # ------------------------------------------------------------------ commands
    w("## Commands of this run\n")
    w(f"`VENV_ROOT` = `{args.venv_root}`. In each round: `descent bench bandwidth` three times, then the commands "
      "down to the JAX peer in this order; in each head-to-head pair: `descent bench bandwidth` once, the four "
      "`descent bench optimizer` commands, then the last two. The counts and total seconds are per command line.\n")
    w("```")
    seen = set()
    for tag, line, secs in run.commands:
        line = line.replace(REPO + "/", "").replace(args.venv_root.rstrip("/") + "/", "$VENV_ROOT/")
        if line in seen:
            continue
        seen.add(line)
        total = sum(s for _, l2, s in run.commands
                    if l2.replace(REPO + "/", "").replace(args.venv_root.rstrip("/") + "/", "$VENV_ROOT/") == line)
        count = sum(1 for _, l2, _ in run.commands
                    if l2.replace(REPO + "/", "").replace(args.venv_root.rstrip("/") + "/", "$VENV_ROOT/") == line)
        w(f"{line}    # {count}×, {total:.1f} s in all")
    w("```\n")
    if run.failures:
        w("## Failures\n")
        for line, code, err in run.failures:
            w(f"- `{line}` exited {code}:\n\n```\n{err.strip()[-1500:]}\n```\n")
    notes = os.path.join(BENCH, "NOTES.md")
    if os.path.exists(notes):
        w(open(notes).read().rstrip() + "\n")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default="torch,tf,jax", help="comma-separated: torch, tf, jax (empty: none)")
    ap.add_argument("--venv-root", default=os.path.dirname(REPO), help="where venv-torch, venv-tf, venv-jax live")
    ap.add_argument("--output", default=os.path.join(REPO, "BENCHMARKS.md"))
    ap.add_argument("--no-build", action="store_true", help="use the existing .build-release binary")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every benchmark (best round kept)")
    ap.add_argument("--pairs", type=int, default=9,
                    help="interleaved Descent/PyTorch pairs for the targets' head-to-head ratios (0: none)")
    args = ap.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    t0 = time.time()
    run = Run()
    if not args.no_build:
        log("$ make release")
        start = time.time()
        subprocess.run(["make", "release"], cwd=REPO, check=True, stdout=sys.stderr)
        run.commands.append(("build", "make release", time.time() - start))
    # The C-level ceiling of the dense updates (bench/c/fused_update.c), when a C compiler is present.
    have_c = shutil.which("cc") is not None
    if have_c:
        line = "cc " + " ".join(C_FLAGS) + " bench/c/fused_update.c -lm -o .build-release/c_fused_update"
        log(f"$ {line}")
        start = time.time()
        os.makedirs(os.path.dirname(C_CEILING), exist_ok=True)
        subprocess.run(["cc", *C_FLAGS, os.path.join(BENCH, "c", "fused_update.c"), "-lm", "-o", C_CEILING],
                       cwd=REPO, check=True)
        run.commands.append(("build", line, time.time() - start))
    peers = [p for p in args.peers.split(",") if p]
    pythons = {p: ensure_venv(args.venv_root, p) for p in peers}
    info = machine_info()

    versions = {}
    for round_ in range(args.rounds):
        log(f"--- round {round_ + 1} of {args.rounds}")
        run.round = round_
        # Descent: bandwidth first (three invocations), then every benchmark.
        for _ in range(3):
            run.json_lines("descent-bandwidth", [DESCENT, "bench", "bandwidth", "--json"])
        for params, tensors in [(10_000_000, 10), (1_000_000, 1000)]:
            for tag, opt in [("descent-adam", "adam"), ("descent-sgd_momentum", SGD_MOMENTUM)]:
                run.json_lines(tag, [DESCENT, "bench", "optimizer", "--optimizer", opt, "--params", str(params),
                                     "--tensors", str(tensors), "--steps", "50", "--json"])
        if have_c:
            run.json_lines("c-ceiling", [C_CEILING])
        run.json_lines("descent-sparse", [DESCENT, "bench", "sparse", "--json"])
        run.json_lines("descent-train", [DESCENT, "bench", "train", "--json"])
        for p in peers:
            rows = run.json_lines(p, [pythons[p], os.path.join(BENCH, "peers", PEERS[p][1])])
            meta = next((r for r in rows if r.get("bench") == "meta"), None)
            if meta:
                if p == "torch":
                    versions[p] = f"torch {meta['version']} (CPU capability {meta.get('cpu_capability')})"
                elif p == "tf":
                    versions[p] = f"tensorflow-cpu {meta['version']}, tf-keras {meta['tf_keras']}"
                else:
                    versions[p] = f"jax/jaxlib {meta['version']}, optax {meta['optax']}, {meta['devices']}"

    # Head-to-head: the targets' comparisons, Descent and PyTorch alternating seconds apart, so that both
    # sides of each ratio see the same state of the machine.
    if "torch" in peers:
        for i in range(args.pairs):
            log(f"--- head-to-head pair {i + 1} of {args.pairs}")
            run.round = i
            run.json_lines("h2h-bandwidth", [DESCENT, "bench", "bandwidth", "--json"])
            for params, tensors in [(10_000_000, 10), (1_000_000, 1000)]:
                for tag, opt in [("h2h-descent-adam", "adam"), ("h2h-descent-sgd_momentum", SGD_MOMENTUM)]:
                    run.json_lines(tag, [DESCENT, "bench", "optimizer", "--optimizer", opt, "--params", str(params),
                                         "--tensors", str(tensors), "--steps", "50", "--json"])
            if have_c:
                run.json_lines("h2h-c-ceiling", [C_CEILING])
            run.json_lines("h2h-descent-train", [DESCENT, "bench", "train", "--model", "large", "--epochs", "2", "--json"])
            run.json_lines("h2h-torch", [pythons["torch"], os.path.join(BENCH, "peers", "torch_bench.py"),
                                         "--only", "optimizer,train", "--shapes", "10000000x10,1000000x1000", "--models", "large",
                                         "--variants", "fused=True,eager (Adam default: for-loop),eager (Adam fused=True)"])

    seconds = time.time() - t0
    with open(os.path.join(BENCH, "results.jsonl"), "w") as f:
        for tag, r in run.results:
            f.write(json.dumps(dict(r, tag=tag)) + "\n")
    with open(args.output, "w") as f:
        f.write(report(run, info, versions, args, started, seconds))
    log(f"wrote {args.output} ({seconds / 60:.1f} min)")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
