"""TensorFlow / tf-keras peer of `descent bench optimizer|sparse|train` (JSON lines on stdout).

    python bench/peers/tf_bench.py [--only optimizer,sparse,train] [--threads N]

optimizer: tf_keras.optimizers.legacy.Adam() and SGD(momentum=0.9) (Keras defaults; the OptimizerV2 that
           Descent re-implements), apply_gradients eagerly and inside tf.function.
sparse:    the embedding table with a tf.IndexedSlices gradient: legacy Adam (dense decay of every row,
           as Descent), Adagrad and SGD; eagerly and inside tf.function.
train:     model.fit of both MLPs with Keras defaults (compile(optimizer="adam") — tf_keras' current Adam —
           and, for comparison with Descent's OptimizerV2, the legacy Adam), SparseCategoricalCrossentropy
           (from_logits=True), verbose=0; time per epoch (best epoch after the first) and per step.
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import common  # noqa: E402

args = common.parser(__doc__).parse_args()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(args.threads)
tf.config.threading.set_inter_op_parallelism_threads(args.threads)
legacy = tf_keras.optimizers.legacy


def timed_variants(opt, grads_and_vars):
    """(variant, step) pairs: eager apply_gradients, and the same inside tf.function."""
    def eager():
        opt.apply_gradients(grads_and_vars)

    @tf.function
    def graph():
        opt.apply_gradients(grads_and_vars)

    return [("eager", eager), ("tf.function", graph)]


def optimizer_bench():
    makers = {"adam": lambda: legacy.Adam(), "sgd_momentum": lambda: legacy.SGD(momentum=0.9)}
    for params, tensors in common.OPTIMIZER_SHAPES:
        sizes = common.split_sizes(params, tensors)
        for name, make in makers.items():
            for variant in ("eager", "tf.function"):
                vs = [tf.Variable(tf.zeros([n])) for n in sizes]
                gs = [tf.fill([n], 0.001) for n in sizes]
                opt = make()
                gv = list(zip(gs, vs))
                step = dict(timed_variants(opt, gv))[variant]
                ms = common.best_ms(step, args.steps, budget=args.budget)
                bpp = 28 if name == "adam" else 20
                common.emit(bench="optimizer", framework="tensorflow", variant="legacy " + variant, optimizer=name,
                            params=params, tensors=tensors, threads=args.threads, ms_per_step=ms,
                            mparams_per_s=params / ms / 1e3, gb_per_s=params * bpp / ms / 1e6)
                del opt, vs, gs, gv


def sparse_bench():
    rows, dim, lookups = common.SPARSE_ROWS, common.SPARSE_DIM, common.SPARSE_LOOKUPS
    idx = common.lookup_indices()
    values = tf.constant(np.random.default_rng(0).standard_normal((lookups, dim), dtype=np.float32) * 0.01)
    grad = tf.IndexedSlices(values, tf.constant(idx, dtype=tf.int64), dense_shape=tf.constant([rows, dim], tf.int64))
    makers = {"adam": lambda: legacy.Adam(), "adagrad": lambda: legacy.Adagrad(), "sgd": lambda: legacy.SGD()}
    for name, make in makers.items():
        for variant in ("eager", "tf.function"):
            table = tf.Variable(tf.random.uniform([rows, dim], -0.05, 0.05, seed=1))
            opt = make()
            step = dict(timed_variants(opt, [(grad, table)]))[variant]
            ms = common.best_ms(step, 20, warmup=2, budget=args.budget)
            common.emit(bench="sparse", framework="tensorflow", variant="legacy " + variant, optimizer=name, rows=rows,
                        dim=dim, lookups=lookups, unique=len(set(idx)), threads=args.threads, ms_per_step=ms)
            del opt, table


class EpochTimer(tf_keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def train_bench(epochs=4):
    for model_name, (layers, batch, _) in common.TRAIN_MODELS.items():
        x, y = common.train_data(model_name)
        for variant, make_opt in [("fit, optimizer='adam'", lambda: "adam"), ("fit, legacy Adam", lambda: legacy.Adam())]:
            tf_keras.utils.set_random_seed(0)
            model = tf_keras.Sequential(
                [tf_keras.layers.Dense(n, activation="relu") for n in layers[1:-1]] + [tf_keras.layers.Dense(layers[-1])])
            model.build((None, layers[0]))
            model.compile(optimizer=make_opt(),
                          loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            timer = EpochTimer()
            model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True, callbacks=[timer])
            steps = -(-x.shape[0] // batch)
            best = min(timer.times[1:])
            common.emit(bench="train", framework="tensorflow", variant=variant, model=model_name,
                        layers="-".join(map(str, layers)), batch=batch, mode="fit", threads=args.threads,
                        ms_per_step=best * 1e3 / steps, steps_per_s=steps / best, steps_per_epoch=steps,
                        ms_per_epoch=best * 1e3, first_epoch_ms=timer.times[0] * 1e3)


def main():
    common.emit(bench="meta", framework="tensorflow", version=tf.__version__, tf_keras=tf_keras.__version__,
                threads=args.threads)
    only = args.only.split(",")
    if "optimizer" in only:
        optimizer_bench()
    if "sparse" in only:
        sparse_bench()
    if "train" in only:
        train_bench()


if __name__ == "__main__":
    main()
