"""JAX / optax peer of `descent bench optimizer|sparse|train` (JSON lines on stdout).

    python bench/peers/jax_bench.py [--only optimizer,sparse,train]

optimizer: optax.adam(1e-3, eps=1e-7) and optax.sgd(0.01, momentum=0.9) over a list of arrays, one
           jax.jit-compiled update with donated buffers (in place), XLA CPU's default threading.
sparse:    JAX has no sparse gradients: the looked-up rows are scatter-added into a dense gradient and
           the whole table is updated (adam, adagrad, sgd), all inside one jitted step.
keras3:    (issue 12; only with --only keras3) optax.adamw, optax.lion, optax.adafactor and optax.contrib.muon with Keras 3's
           defaults, jitted with donated buffers, on the workloads of common.keras3_workloads.
train:     a jitted training step (forward, grad, optax.adam update) of both MLPs.
"""
import os

import common

args = common.parser(__doc__).parse_args()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

THREADS = os.cpu_count()


def make_step(opt):
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state
    return jax.jit(step, donate_argnums=(0, 1))


class Runner:
    """Holds the donated state between steps."""
    def __init__(self, step, params, state, *rest):
        self.step, self.params, self.state, self.rest = step, params, state, rest

    def __call__(self):
        self.params, self.state = self.step(self.params, self.state, *self.rest)

    def sync(self):
        jax.block_until_ready(self.params)


def optimizer_bench():
    makers = {"adam": lambda: optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-7),
              "sgd_momentum": lambda: optax.sgd(0.01, momentum=0.9)}
    for params, tensors in common.OPTIMIZER_SHAPES:
        sizes = common.split_sizes(params, tensors)
        for name, make in makers.items():
            opt = make()
            ps = [jnp.zeros(n, jnp.float32) for n in sizes]
            gs = [jnp.full(n, 0.001, jnp.float32) for n in sizes]
            run = Runner(make_step(opt), ps, opt.init(ps), gs)
            ms = common.best_ms(run, args.steps, sync=run.sync, budget=args.budget)
            bpp = 28 if name == "adam" else 20
            common.emit(bench="optimizer", framework="jax", variant="optax jit", optimizer=name, params=params,
                        tensors=tensors, threads=THREADS, ms_per_step=ms, mparams_per_s=params / ms / 1e3,
                        gb_per_s=params * bpp / ms / 1e6)
            del run, ps, gs


def sparse_bench():
    rows, dim, lookups = common.SPARSE_ROWS, common.SPARSE_DIM, common.SPARSE_LOOKUPS
    idx_list = common.lookup_indices()
    idx = jnp.array(idx_list, jnp.int32)
    values = jnp.array(np.random.default_rng(0).standard_normal((lookups, dim), dtype=np.float32) * 0.01)
    makers = {"adam": lambda: optax.adam(1e-3, eps=1e-7),
              "adagrad": lambda: optax.adagrad(0.001, initial_accumulator_value=0.1, eps=1e-7),
              "sgd": lambda: optax.sgd(0.01)}
    for name, make in makers.items():
        opt = make()

        def step(table, state, idx, values):
            g = jnp.zeros_like(table).at[idx].add(values)
            updates, state = opt.update(g, state, table)
            return optax.apply_updates(table, updates), state

        table = jax.random.uniform(jax.random.PRNGKey(1), (rows, dim), jnp.float32, -0.05, 0.05)
        run = Runner(jax.jit(step, donate_argnums=(0, 1)), table, opt.init(table), idx, values)
        ms = common.best_ms(run, 20, warmup=2, sync=run.sync, budget=args.budget)
        common.emit(bench="sparse", framework="jax", variant="dense scatter + full-table update (jit)", optimizer=name,
                    rows=rows, dim=dim, lookups=lookups, unique=len(set(idx_list)), threads=THREADS, ms_per_step=ms)
        del run, table


def keras3_bench():
    a, l, f, m = common.KERAS3_ADAMW, common.KERAS3_LION, common.KERAS3_ADAFACTOR, common.KERAS3_MUON
    makers = {
        "adamw": lambda: optax.adamw(a["lr"], b1=a["beta_1"], b2=a["beta_2"], eps=a["epsilon"], weight_decay=a["weight_decay"]),
        "lion": lambda: optax.lion(l["lr"], b1=l["beta_1"], b2=l["beta_2"], weight_decay=0.0),
        # optax factors dimensions of at least 128 (min_dim_size_to_factor): the matrices here are factored,
        # the vectors are not, as in Keras (which factors every rank >= 2 variable).
        "adafactor": lambda: optax.adafactor(f["lr"], decay_rate=-f["beta_2_decay"], clipping_threshold=f["clip_threshold"],
                                             eps=f["epsilon_1"]),
        # Newton-Schulz in float32 (as Keras and Descent); consistent_rms: Keras' rms_rate.
        "muon": lambda: optax.contrib.muon(m["lr"], ns_steps=m["ns_steps"], beta=m["momentum"], eps=m["epsilon"],
                                           weight_decay=m["weight_decay"], nesterov=True, consistent_rms=m["rms_rate"]),
    }
    for name, make in makers.items():
        if not common.selected(name, args.optimizers):
            continue
        for params, tensors, matrix, shapes in common.keras3_workloads(name, args):
            opt = make()
            ps = [jnp.zeros(sh, jnp.float32) for sh in shapes]
            gs = [jnp.full(sh, 0.001, jnp.float32) for sh in shapes]
            run = Runner(make_step(opt), ps, opt.init(ps), gs)
            ms = common.best_ms(run, args.steps, sync=run.sync, budget=args.budget)
            common.emit(bench="optimizer", family="keras3", framework="jax", variant="optax jit", optimizer=name,
                        matrix=matrix, params=params, tensors=tensors, threads=THREADS, ms_per_step=ms,
                        mparams_per_s=params / ms / 1e3)
            del run, ps, gs


def train_bench():
    for model_name, (layers, batch, steps) in common.TRAIN_MODELS.items():
        x, y = common.train_data(model_name)
        count = x.shape[0] // batch
        batches = [(jnp.array(x[i * batch:(i + 1) * batch]), jnp.array(y[i * batch:(i + 1) * batch]))
                   for i in range(count)]
        key = jax.random.PRNGKey(0)
        params = []
        for a, b in zip(layers[:-1], layers[1:]):
            key, sub = jax.random.split(key)
            limit = (6 / (a + b)) ** 0.5
            params.append((jax.random.uniform(sub, (a, b), jnp.float32, -limit, limit), jnp.zeros(b, jnp.float32)))
        opt = optax.adam(1e-3, eps=1e-7)

        def loss_fn(params, xb, yb):
            h = xb
            for i, (w, b) in enumerate(params):
                h = h @ w + b
                if i < len(params) - 1:
                    h = jax.nn.relu(h)
            return optax.softmax_cross_entropy_with_integer_labels(h, yb).mean()

        def step(params, state, xb, yb):
            grads = jax.grad(loss_fn)(params, xb, yb)
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        jstep = jax.jit(step, donate_argnums=(0, 1))
        holder = {"p": params, "s": opt.init(params), "i": 0}

        def run():
            xb, yb = batches[holder["i"] % count]
            holder["i"] += 1
            holder["p"], holder["s"] = jstep(holder["p"], holder["s"], xb, yb)

        ms = common.best_ms(run, steps, warmup=10, sync=lambda: jax.block_until_ready(holder["p"]))
        common.emit(bench="train", framework="jax", variant="jit train step", model=model_name,
                    layers="-".join(map(str, layers)), batch=batch, mode="train_step", threads=THREADS,
                    ms_per_step=ms, steps_per_s=1000 / ms)


def main():
    common.emit(bench="meta", framework="jax", version=jax.__version__, optax=optax.__version__,
                devices=str(jax.devices()))
    only = args.only.split(",")
    if "optimizer" in only:
        optimizer_bench()
    if "sparse" in only:
        sparse_bench()
    if "train" in only:
        train_bench()
    if "keras3" in only:
        keras3_bench()


if __name__ == "__main__":
    main()
