"""PyTorch peer of `descent bench optimizer|sparse|train` (JSON lines on stdout).

    python bench/peers/torch_bench.py [--only optimizer,sparse,train] [--threads N]

optimizer: torch.optim.Adam / SGD(momentum=0.9) with Keras' defaults (lr, eps=1e-7), each as
           foreach=False (per-tensor loop), foreach=True (multi-tensor) and fused=True.
sparse:    the embedding table with a sparse COO gradient (as nn.Embedding(sparse=True) produces):
           Adagrad and SGD take it directly; torch.optim.Adam rejects sparse gradients, so Adam is
           measured twice: SparseAdam (lazy: touches only the looked-up rows, different semantics from
           Keras) and fused Adam on the densified gradient (Keras legacy semantics: every row moves).
keras3:    (issue 12; only with --only keras3) the peers of Descent's Keras 3 family with Keras 3's defaults:
           AdamW fused=True and foreach=True (weight_decay 0.004), Adafactor (foreach=True), Muon
           (adjust_lr_fn="match_rms_adamw": Keras' rms_rate 0.2; Newton-Schulz in bfloat16, as torch does;
           only on common.TORCH_MUON_MATRICES), on the workloads of common.keras3_workloads. torch has no Lion.
train:     eager training steps of both MLPs (zero_grad, forward, CrossEntropyLoss, backward, Adam.step).
"""
import torch

import common


def optimizer_bench(args):
    configs = {
        "adam": lambda ps, **kw: torch.optim.Adam(ps, lr=common.ADAM["lr"], betas=(0.9, 0.999), eps=1e-7, **kw),
        "sgd_momentum": lambda ps, **kw: torch.optim.SGD(ps, lr=0.01, momentum=0.9, **kw),
    }
    variants = {"foreach=False": dict(foreach=False), "foreach=True": dict(foreach=True), "fused=True": dict(fused=True)}
    for params, tensors in common.shapes(args):
        sizes = common.split_sizes(params, tensors)
        for name, make in configs.items():
            for variant, kw in variants.items():
                if not common.selected(variant, args.variants):
                    continue
                ps = [torch.zeros(n, requires_grad=True) for n in sizes]
                for p in ps:
                    p.grad = torch.full((p.numel(),), 0.001)
                opt = make(ps, **kw)
                ms = common.best_ms(opt.step, args.steps, budget=args.budget)
                bytes_per_param = 28 if name == "adam" else 20
                common.emit(bench="optimizer", framework="pytorch", variant=variant, optimizer=name, params=params,
                            tensors=tensors, threads=torch.get_num_threads(), ms_per_step=ms,
                            mparams_per_s=params / ms / 1e3, gb_per_s=params * bytes_per_param / ms / 1e6)
                del opt, ps


def sparse_bench(args):
    rows, dim, lookups = common.SPARSE_ROWS, common.SPARSE_DIM, common.SPARSE_LOOKUPS
    indices = torch.tensor(common.lookup_indices(), dtype=torch.int64)
    torch.manual_seed(0)
    values = torch.randn(lookups, dim) * 0.01
    grad = torch.sparse_coo_tensor(indices[None, :], values, (rows, dim))  # uncoalesced, as Embedding gives
    unique = int(indices.unique().numel())
    cases = [
        ("adam", "SparseAdam (lazy: looked-up rows only)", lambda p: torch.optim.SparseAdam([p], lr=0.001, eps=1e-7), False),
        ("adam", "Adam fused=True on the densified gradient (all rows, Keras semantics)",
         lambda p: torch.optim.Adam([p], lr=0.001, eps=1e-7, fused=True), True),
        ("adagrad", "Adagrad (sparse gradient)",
         lambda p: torch.optim.Adagrad([p], lr=0.001, initial_accumulator_value=0.1, eps=1e-7), False),
        ("sgd", "SGD (sparse gradient)", lambda p: torch.optim.SGD([p], lr=0.01), False),
    ]
    for name, variant, make, densify in cases:
        table = (torch.rand(rows, dim) * 0.1 - 0.05).requires_grad_()
        opt = make(table)

        def step():
            # The gradient is made per step (densified or coalesced inside the step), as backward would.
            table.grad = grad.to_dense() if densify else grad
            opt.step()

        ms = common.best_ms(step, 20, warmup=2, budget=args.budget)
        common.emit(bench="sparse", framework="pytorch", variant=variant, optimizer=name, rows=rows, dim=dim,
                    lookups=lookups, unique=unique, threads=torch.get_num_threads(), ms_per_step=ms)
        del opt, table


def keras3_bench(args):
    a, f, m = common.KERAS3_ADAMW, common.KERAS3_ADAFACTOR, common.KERAS3_MUON
    cases = [
        ("adamw", "fused=True", lambda ps: torch.optim.AdamW(ps, lr=a["lr"], betas=(a["beta_1"], a["beta_2"]), eps=a["epsilon"],
                                                            weight_decay=a["weight_decay"], fused=True)),
        ("adamw", "foreach=True", lambda ps: torch.optim.AdamW(ps, lr=a["lr"], betas=(a["beta_1"], a["beta_2"]), eps=a["epsilon"],
                                                              weight_decay=a["weight_decay"], foreach=True)),
    ]
    if hasattr(torch.optim, "Adafactor"):
        cases.append(("adafactor", "foreach=True", lambda ps: torch.optim.Adafactor(
            ps, lr=f["lr"], beta2_decay=f["beta_2_decay"], eps=(f["epsilon_1"], f["epsilon_2"]), d=f["clip_threshold"], foreach=True)))
    if hasattr(torch.optim, "Muon"):
        cases.append(("muon", "bfloat16 Newton-Schulz", lambda ps: torch.optim.Muon(
            ps, lr=m["lr"], weight_decay=m["weight_decay"], momentum=m["momentum"], nesterov=True, ns_steps=m["ns_steps"],
            eps=m["epsilon"], adjust_lr_fn="match_rms_adamw")))
    for name, variant, make in cases:
        if not common.selected(name, args.optimizers) or not common.selected(variant, args.variants):
            continue
        matrices = common.TORCH_MUON_MATRICES if name == "muon" else None
        for params, tensors, matrix, shapes in common.keras3_workloads(name, args, matrices):
            ps = [torch.zeros(sh, requires_grad=True) for sh in shapes]
            for p in ps:
                p.grad = torch.full(p.shape, 0.001)
            opt = make(ps)
            ms = common.best_ms(opt.step, args.steps, budget=args.budget)
            common.emit(bench="optimizer", family="keras3", framework="pytorch", variant=variant, optimizer=name,
                        matrix=matrix, params=params, tensors=tensors, threads=torch.get_num_threads(), ms_per_step=ms,
                        mparams_per_s=params / ms / 1e3)
            del opt, ps


def train_bench(args):
    for model_name, (layers, batch, steps) in common.models(args).items():
        x, y = common.train_data(model_name)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        count = x.shape[0] // batch
        batches = [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(count)]
        for variant, kw in [("eager (Adam default: for-loop)", {}), ("eager (Adam fused=True)", dict(fused=True))]:
            if not common.selected(variant, args.variants):
                continue
            torch.manual_seed(0)
            mods = []
            for a, b in zip(layers[:-1], layers[1:]):
                mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
            model = torch.nn.Sequential(*mods[:-1])
            opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7, **kw)
            loss_fn = torch.nn.CrossEntropyLoss()
            i = [0]

            def step():
                xb, yb = batches[i[0] % count]
                i[0] += 1
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()

            ms = common.best_ms(step, steps, warmup=10)
            common.emit(bench="train", framework="pytorch", variant=variant, model=model_name,
                        layers="-".join(map(str, layers)), batch=batch, mode="train_step",
                        threads=torch.get_num_threads(), ms_per_step=ms, steps_per_s=1000 / ms)


def main():
    args = common.parser(__doc__).parse_args()
    torch.set_num_threads(args.threads)
    common.emit(bench="meta", framework="pytorch", version=torch.__version__, threads=torch.get_num_threads(),
                cpu_capability=torch.backends.cpu.get_cpu_capability())
    only = args.only.split(",")
    if "optimizer" in only:
        optimizer_bench(args)
    if "sparse" in only:
        sparse_bench(args)
    if "train" in only:
        train_bench(args)
    if "keras3" in only:
        keras3_bench(args)


if __name__ == "__main__":
    main()
