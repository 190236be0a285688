"""The multi-worker section of the BENCHMARKS.md report (part `distributed` of bench/run_all.py) and its
targets. Pure formatting, like report.py (which calls it); a missing command's rows leave "not measured".

The rows it reads, by run_all.py tag (each command runs once per round):
- dist-descent-train-1t: `mpirun --allow-run-as-root -np 2 -x DESCENT_NUM_THREADS=1 descent bench train
  --model large --strategy multi-worker --json`; dist-descent-train: the same without -x (default threads).
  Rank 0's lines of `descent bench train --json` (bench "train", model, layers, batch, mode "train_step" or
  "fit", threads, ms_per_step, steps_per_s) plus "strategy": "multi-worker" and "replicas": 2.
- dist-descent-single: `descent bench train --model large --threads 2 --json` (the 1-process baseline).
- dist-descent-allreduce: `mpirun --allow-run-as-root -np 2 descent bench allreduce --json`: {"bench":
  "allreduce", "bytes", "raw_ms", "bucketed_ms", "raw_gbps", "bucketed_gbps"} per size.
- dist-torch, dist-tf: bench/peers/distributed_peers.py's {"bench": "distributed", "setup", ...} lines.
"""

# The large MLP's gradient: 784·1024 + 1024 + 1024·1024 + 1024 + 1024·10 + 10 float32 values.
GRADIENT_BYTES = 4 * (784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10)
TARGET_VS_PEERS = 2.0     # issue 11: ≥ 2× faster than PyTorch DDP and TF MultiWorkerMirroredStrategy
TARGET_VS_SINGLE = 1.15   # the 2-rank step within 1.15× of Descent's 1-process 2-thread step
TARGET_BUCKETED = 0.90    # bucketed allreduce throughput ≥ 90% of a raw MPI_Allreduce of the same bytes

# (tag, match, label) of the step-time table, in its order. The first is the one the targets compare.
HEADLINE = ("dist-descent-train-1t", dict(bench="train", mode="train_step"))
STEP_ROWS = [
    ("dist-descent-train-1t", dict(bench="train", mode="train_step"),
     "**Descent** `MultiWorkerMirroredStrategy`, `trainStep` (`-x DESCENT_NUM_THREADS=1`)"),
    ("dist-descent-train-1t", dict(bench="train", mode="fit"),
     "Descent `MultiWorkerMirroredStrategy`, `fit` (`-x DESCENT_NUM_THREADS=1`)"),
    ("dist-descent-train", dict(bench="train", mode="train_step"),
     "Descent `MultiWorkerMirroredStrategy`, `trainStep` (default threads)"),
    ("dist-descent-train", dict(bench="train", mode="fit"), "Descent `MultiWorkerMirroredStrategy`, `fit` (default threads)"),
    ("dist-descent-single", dict(bench="train", mode="train_step"), "Descent, 1 process, `trainStep`"),
    ("dist-descent-single", dict(bench="train", mode="fit"), "Descent, 1 process, `fit`"),
    ("dist-torch", dict(bench="distributed", setup="ddp-gloo-2x1"), "PyTorch `DistributedDataParallel`, gloo"),
    ("dist-torch", dict(bench="distributed", setup="single-1x2"), "PyTorch, 1 process"),
    ("dist-tf", dict(bench="distributed", setup="mwms-2x1"),
     "TF `MultiWorkerMirroredStrategy` (TF_CONFIG), custom loop, legacy Adam"),
    ("dist-tf", dict(bench="distributed", setup="default-1x2"), "TF, default strategy (1 replica), same loop"),
]


def med(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def num(x):
    return "—" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}")


def by_round(results, tag, match):
    """{round: the first row of `tag` in that round that has every field of `match`}."""
    out = {}
    for t, r in results:
        if t == tag and all(r.get(k) == v for k, v in match.items()):
            out.setdefault(r.get("round", 0), r)
    return out


def ratios(top, bottom, key="ms_per_step"):
    """Within-round ratios top[key] ÷ bottom[key] over the rounds both have."""
    return [top[i][key] / bottom[i][key] for i in sorted(top) if i in bottom and bottom[i].get(key)]


def spread(xs, unit="", f=num):
    """'median (min–max)' of xs, or — when empty."""
    if not xs:
        return "—"
    return f"{f(med(xs))}{unit}" + (f" ({f(min(xs))}–{f(max(xs))}{unit})" if len(xs) > 1 else "")


def times(x):
    return f"{x:.2f}"


def size(b):
    return f"{b >> 20} MiB" if b % (1 << 20) == 0 else f"{b / 1e6:.2f} MB"


def shape(r):
    """'processes × threads' of a row."""
    processes = r.get("processes", r.get("replicas", 1))
    return f"{processes} × {r.get('threads', '?')}"


def distributed_section(run, w):
    """The section; returns the targets' values (a dict of (value, text); missing ones absent)."""
    res = run.results
    rows = [(label, by_round(res, tag, match)) for tag, match, label in STEP_ROWS]
    allreduce = [r for t, r in res if t == "dist-descent-allreduce" and r.get("bench") == "allreduce"]
    values = {}
    if not any(rs for _, rs in rows) and not allreduce:
        w("## Multi-worker training (2 processes × 1 thread)\n")
        w("Part `distributed` ran, but none of its commands gave results (see the failures below).\n")
        return values
    w("## Multi-worker training (2 processes × 1 thread)\n")
    w("The large MLP 784→1024→1024→10 (ReLU), Adam (Keras defaults), SparseCategoricalCrossentropy from logits, "
      "**global batch 256** of synthetic data, on **2 processes × 1 thread** on this 2-core machine (128 samples per "
      "process), beside the same model in 1 process with 2 threads. Descent: `mpirun -np 2 descent bench train "
      "--model large --strategy multi-worker` (rank 0 reports; `trainStep` is the best of 3 repeats of 20 steps, "
      "`fit` the best epoch after the first, as `descent bench train`). Peers (`bench/peers/distributed_peers.py`, "
      "127.0.0.1, free ports): PyTorch `DistributedDataParallel` with gloo and `torch.set_num_threads(1)`; "
      "TensorFlow `MultiWorkerMirroredStrategy` from TF_CONFIG with 1 intra- and 1 inter-op thread, tf_keras "
      "legacy Adam and the custom loop of TF's tutorial (`strategy.run` in a `tf.function`, "
      "`compute_average_loss`); each the median of 30 steps timed one by one after 5 warm-up steps, on rank 0. "
      "\"weights identical\": every worker's weights hash the same after the last step. Each command runs once "
      "per round; a time is the median over the rounds (range in brackets), and a ratio is taken within each "
      "round (median, range), so that both sides see the same state of the machine.\n")
    head = by_round(res, *HEADLINE)
    w("| setup | processes × threads | ms/step | weights identical | Descent 2 × 1 faster by |")
    w("|---|---|---:|---|---:|")
    for (tag, match, _), (label, rs) in zip(STEP_ROWS, rows):
        if not rs:
            continue
        any_row = next(iter(rs.values()))
        same = {r.get("weights_identical") for r in rs.values()} - {None}
        identical = "—" if not same else ("yes" if same == {True} else "**no**")
        compare = "" if (tag, match) == HEADLINE else spread(ratios(rs, head), "×", times)
        if match.get("mode") == "fit":  # fit against Descent's 2-rank fit
            compare = "" if tag == "dist-descent-train-1t" else spread(
                ratios(rs, by_round(res, "dist-descent-train-1t", match)), "×", times)
        w(f"| {label} | {shape(any_row)} | {spread([r['ms_per_step'] for r in rs.values()])} | {identical} | "
          f"{compare} |")
    w("")

    d2, d1 = head, by_round(res, "dist-descent-single", HEADLINE[1])
    for key, tag, setup in [("vs_ddp", "dist-torch", "ddp-gloo-2x1"), ("vs_mwms", "dist-tf", "mwms-2x1")]:
        xs = ratios(by_round(res, tag, dict(bench="distributed", setup=setup)), d2)
        if xs:
            values[key] = (med(xs), f"{spread(xs, '×', times)} (peer's ms/step ÷ Descent's, median of {len(xs)} round{'s' if len(xs) > 1 else ''})")
    xs = ratios(d2, d1)
    if xs:
        fit = ratios(by_round(res, "dist-descent-train-1t", dict(bench="train", mode="fit")),
                     by_round(res, "dist-descent-single", dict(bench="train", mode="fit")))
        values["vs_single"] = (med(xs), f"{spread(xs, '×', times)} (2 ranks ÷ 1 process, trainStep"
                               + (f"; fit {spread(fit, '×', times)}" if fit else "") + ")")

    if allreduce:
        w("Allreduce (`mpirun -np 2 descent bench allreduce`): a float sum over 2 ranks of each size, one raw "
          "`MPI_Allreduce` of the whole buffer against Descent's bucketed allreduce of the same bytes; bus "
          "bandwidth = bytes ÷ time. Medians over the rounds (range); the last column is the within-round "
          "ratio of throughputs (raw time ÷ bucketed time; above 100%: bucketing is faster).\n")
        w("| bytes | raw ms | raw GB/s | bucketed ms | bucketed GB/s | bucketed ÷ raw |")
        w("|---:|---:|---:|---:|---:|---:|")
        worst = None
        for b in sorted({r["bytes"] for r in allreduce}):
            rs = [r for r in allreduce if r["bytes"] == b]
            share = [r["raw_ms"] / r["bucketed_ms"] for r in rs if r.get("bucketed_ms")]
            pct = lambda x: f"{100 * x:.0f}"  # noqa: E731
            note = " (the large MLP's gradient)" if b == GRADIENT_BYTES else ""
            w(f"| {b:,} = {size(b)}{note} | {spread([r['raw_ms'] for r in rs])} | {spread([r['raw_gbps'] for r in rs])} | "
              f"{spread([r['bucketed_ms'] for r in rs])} | {spread([r['bucketed_gbps'] for r in rs])} | "
              f"{spread(share, '%', pct)} |")
            if share and (worst is None or med(share) < worst[0]):
                worst = (med(share), b)
            if b == GRADIENT_BYTES and share:
                values["gradient_share"] = med(share)
        w("")
        if worst:
            # The target: the bytes the training step all-reduces (the large MLP's gradient). The
            # lowest size of the sweep is reported beside it.
            at_gradient = values.get("gradient_share")
            lowest = f"lowest of the sweep: {100 * worst[0]:.0f}% at {size(worst[1])}"
            if at_gradient is not None:
                values["bucketed"] = (at_gradient, f"{100 * at_gradient:.0f}% at the gradient's {GRADIENT_BYTES:,} bytes ({lowest})")
            else:
                values["bucketed"] = (worst[0], f"the gradient's size was not measured; {lowest}")
    return values


def distributed_targets(values, target):
    """The targets' rows of part `distributed` (target is report.py's row writer)."""
    for key, peer in [("vs_ddp", "PyTorch DDP (gloo)"), ("vs_mwms", "TF MultiWorkerMirroredStrategy")]:
        v = values.get(key)
        target(f"multi-worker: Descent 2 ranks × 1 thread ≥ {TARGET_VS_PEERS:g}× faster than {peer}, 2 × 1",
               v and v[0], TARGET_VS_PEERS, v[1] if v else "")
    v = values.get("vs_single")
    target(f"multi-worker: 2-rank step ≤ {TARGET_VS_SINGLE:g}× Descent's 1-process 2-thread step", v and v[0],
           TARGET_VS_SINGLE, v[1] if v else "", at_most=True)
    v = values.get("bucketed")
    target(f"allreduce: bucketed ≥ {100 * TARGET_BUCKETED:.0f}% of a raw MPI_Allreduce of the same bytes (the large MLP's gradient)",
           v and v[0], TARGET_BUCKETED, v[1] if v else "")
