"""The Keras 3 optimizers section of the BENCHMARKS.md report (part `keras3` of bench/run_all.py, issue 12)
and its targets. Pure formatting, like report.py (which calls it); a missing command's rows leave "not
measured".

The rows it reads, by run_all.py tag:
- k3-descent: `descent bench optimizer --optimizer '{"module": "keras.optimizers", "class_name": C, "config":
  {}}' (--params P --tensors T | --matrix RxC --tensors K) --json`: {"bench": "optimizer", "optimizer",
  "family": "keras3", "matrix" (matrices only), "params", "tensors", "ms_per_step", "gb_per_s"}, once per round.
- k3-torch, k3-jax: bench/peers/torch_bench.py and jax_bench.py `--only keras3` ("framework", "variant",
  "optimizer", "matrix" or null, "params", "tensors", "ms_per_step"), once per round.
- k3h-descent, k3h-torch: the AdamW head-to-head pairs (Descent, then torch.optim.AdamW(fused=True)), one
  pair per `round`.
"""
from report_distributed import med, num, spread, times

TARGET_ADAMW_10M = 1.0    # AdamW 10M params / 10 tensors: ≥ 1× torch.optim.AdamW(fused=True)
TARGET_ADAMW_1M = 5.0     # AdamW 1M params / 1000 tensors: ≥ 5×
TARGET_PEERS = 1.0        # Lion and Adafactor ≥ 1× optax (jit) and PyTorch where it has them; Muon ≥ 1× torch

# The optimizers in the table's order, with Descent's class and the peers' variants compared.
OPTIMIZERS = [
    ("adamw", "Keras3.AdamW (weight decay 0.004)"),
    ("lion", "Keras3.Lion"),
    ("adafactor", "Keras3.Adafactor"),
    ("muon", "Keras3.Muon (Newton–Schulz, 5 steps, OpenBLAS float32)"),
]
TORCH_VARIANT = {"adamw": "fused=True", "adafactor": "foreach=True", "muon": "bfloat16 Newton-Schulz"}


def key(r):
    """The workload of a row: (optimizer, matrix or None, params, tensors)."""
    return (r.get("optimizer"), r.get("matrix"), r.get("params"), r.get("tensors"))


def label(k):
    _, matrix, params, tensors = k
    if matrix:
        return f"{tensors} × {matrix.replace('x', '×')}"
    return f"{params / 1e6:g}M / {tensors:,}"


def rows_by_round(results, tag, **match):
    """{workload: {round: row}} of `tag`'s optimizer rows with every field of `match`."""
    out = {}
    for t, r in results:
        if t == tag and r.get("bench") == "optimizer" and all(r.get(k) == v for k, v in match.items()):
            out.setdefault(key(r), {}).setdefault(r.get("round", 0), r)
    return out


def within(peer, descent):
    """Within-round ratios peer ms ÷ Descent ms over the rounds both have."""
    return [peer[i]["ms_per_step"] / descent[i]["ms_per_step"] for i in sorted(peer) if i in descent]


def keras3_section(run, args, w):
    """The section; returns the targets' values: {name: (value, text)}."""
    res = run.results
    descent = rows_by_round(res, "k3-descent")
    torch = {name: rows_by_round(res, "k3-torch", variant=variant) for name, variant in TORCH_VARIANT.items()}
    optax = rows_by_round(res, "k3-jax")
    w("## Keras 3 optimizers (issue 12)\n")
    if not descent:
        w("Part `keras3` ran, but Descent's commands gave no results (see the failures below).\n")
        return {}
    w("`applyGradients` of Keras 3's optimizers (`Keras3.*`, Keras 3 defaults: `descent bench optimizer --optimizer "
      "'{\"module\": \"keras.optimizers\", \"class_name\": C, \"config\": {}}'`) over float32 variables with constant "
      "gradients, against the peers with the same hyperparameters (`bench/peers/common.py`): "
      "`torch.optim.AdamW(fused=True)`, `torch.optim.Adafactor(foreach=True)`, `torch.optim.Muon` "
      "(`adjust_lr_fn=\"match_rms_adamw\"`; its Newton–Schulz runs in bfloat16, slow on this CPU, so PyTorch runs only "
      "the 4 × 256×256 workload) and optax (`adamw`, `lion`, `adafactor`, `contrib.muon`, jitted with donated buffers). "
      "PyTorch has no Lion. Vectors: P parameters in T 1-D variables; matrices: K 2-D variables (Muon's and Adafactor's "
      f"2-D rules). Each command runs once per round ({args.rounds} rounds); a time is the median over the rounds "
      "(range), a speed-up the within-round ratio peer ÷ Descent (median, range; above 1: Descent is faster).\n")
    w("| optimizer | workload | Descent ms/step | PyTorch ms/step | optax ms/step | vs PyTorch | vs optax |")
    w("|---|---|---:|---:|---:|---:|---:|")
    values = {}
    for name, title in OPTIMIZERS:
        for k in sorted((k for k in descent if k[0] == name), key=lambda k: (k[1] is not None, k[2] or 0, k[1] or "")):
            d = descent[k]
            t, o = torch.get(name, {}).get(k, {}), optax.get(k, {})
            vs_t, vs_o = within(t, d), within(o, d)
            ms = lambda rs: spread([r["ms_per_step"] for r in rs.values()]) if rs else "—"  # noqa: E731
            w(f"| {title} | {label(k)} | {ms(d)} | {ms(t)} | {ms(o)} | {spread(vs_t, '×', times)} | "
              f"{spread(vs_o, '×', times)} |")
            for peer, xs in [("torch", vs_t), ("optax", vs_o)]:
                if xs:
                    values[(name, peer, label(k))] = (med(xs), f"{spread(xs, '×', times)} ({label(k)}, median of "
                                                               f"{len(xs)} round{'s' if len(xs) > 1 else ''})")
    w("")

    # The AdamW pairs: Descent and PyTorch fused seconds apart.
    hd = rows_by_round(res, "k3h-descent")
    ht = rows_by_round(res, "k3h-torch", variant="fused=True")
    pairs = {k: within(ht.get(k, {}), hd[k]) for k in hd}
    if any(pairs.values()):
        w(f"AdamW head-to-head: {args.pairs} pairs after the rounds, Descent's `Keras3.AdamW` then "
          "`torch.optim.AdamW(fused=True)` seconds apart, so that both sides of a ratio see the same state of this "
          "shared VM (both are memory-bound at 10M / 10: 28 bytes per parameter). Ratio: PyTorch's time ÷ Descent's.\n")
        w("| workload | median | min | max | per pair |\n|---|---:|---:|---:|---|")
        for k in sorted(pairs, key=lambda k: -(k[2] or 0)):
            xs = pairs[k]
            if xs:
                w(f"| {label(k)} | **{med(xs):.2f}×** | {min(xs):.2f}× | {max(xs):.2f}× | "
                  f"{', '.join(f'{x:.2f}×' for x in xs)} |")
                values[("adamw", "torch-pairs", label(k))] = (
                    med(xs), f"{med(xs):.2f}× median of {len(xs)} pairs (range {min(xs):.2f}–{max(xs):.2f}×)")
        w("")
    return values


def keras3_targets(values, target):
    """The targets' rows of part `keras3` (target is report.py's row writer)."""
    values = values or {}

    def adamw(workload, goal):
        v = values.get(("adamw", "torch-pairs", workload)) or values.get(("adamw", "torch", workload))
        target(f"Keras 3 AdamW, {workload}: ≥ {goal:g}× torch.optim.AdamW(fused=True)", v and v[0], goal, v[1] if v else "")

    adamw("10M / 10", TARGET_ADAMW_10M)
    adamw("1M / 1,000", TARGET_ADAMW_1M)

    def worst(name, peer):
        """The lowest median ratio over the workloads of (name, peer), with every workload's text."""
        vs = [(v, k[2]) for k, v in values.items() if k[0] == name and k[1] == peer]
        if not vs:
            return None
        low = min(vs, key=lambda x: x[0][0])
        return low[0][0], "; ".join(f"{v[1]}" for v, _ in sorted(vs, key=lambda x: x[1]))

    for name, peer, title in [("lion", "optax", "Keras 3 Lion: ≥ 1× optax.lion (jit), every workload"),
                              ("adafactor", "optax", "Keras 3 Adafactor: ≥ 1× optax.adafactor (jit), every workload"),
                              ("adafactor", "torch", "Keras 3 Adafactor: ≥ 1× torch.optim.Adafactor, every workload"),
                              ("muon", "torch", "Keras 3 Muon: ≥ 1× torch.optim.Muon (4 × 256×256)")]:
        v = worst(name, peer)
        target(title, v and v[0], TARGET_PEERS, v[1] if v else "")


__all__ = ["keras3_section", "keras3_targets", "num"]
