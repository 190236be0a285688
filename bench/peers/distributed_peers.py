#!/usr/bin/env python3
"""Peers of Descent's multi-worker training (`mpirun -np 2 descent bench train --model large --strategy multi-worker`).

    /work/venv-torch/bin/python bench/peers/distributed_peers.py torch [--steps 30 --warmup 5 --timeout 300]
    /work/venv-tf/bin/python    bench/peers/distributed_peers.py tf [--setups mwms-2x1,default-1x2]

The workload of issue 11: the large MLP 784→1024→1024→10 (ReLU), Adam with Keras' defaults (lr 0.001,
β 0.9/0.999, ε 1e-7), SparseCategoricalCrossentropy from logits, global batch 256 of the synthetic data of
`descent bench train` (common.large_data: normal inputs, random labels). Each setup runs in fresh worker
processes started by this script (the launcher), on 127.0.0.1 with free ports:
- torch `ddp-gloo-2x1`: 2 processes, `torch.distributed` backend gloo, `DistributedDataParallel`,
  torch.set_num_threads(1), 128 samples per process (rank r takes rows r*128..r*128+127 of each global
  batch); `single-1x2`: 1 process, 2 threads, batch 256, no process group. Adam default (for-loop) variant.
- tf `mwms-2x1`: 2 workers, `tf.distribute.MultiWorkerMirroredStrategy` from TF_CONFIG, intra- and inter-op
  threads 1, model and tf_keras legacy Adam built in `strategy.scope()`, the custom training loop of TF's
  MWMS tutorial: a `tf.function` step that calls `strategy.run` on the next batch of
  `strategy.experimental_distribute_dataset` (auto-shard policy DATA: 128 per worker) with
  `tf.nn.compute_average_loss(..., global_batch_size=256)`; `default-1x2`: the same code under the default
  strategy (1 replica), 2 threads.
A step is forward, backward (with the gradient allreduce) and the Adam update; every step is timed on its
own (the loss is fetched, so the step has finished) after `--warmup` steps, and ms_per_step is the median of
rank 0's `--steps` steps. After the last step each worker hashes its weights (SHA-256 of the float32 bytes);
"weights_identical" says whether every worker's hash is the same (bit-identical weights).

Prints one JSON line per setup (only the launcher prints): {"bench": "distributed", "peer", "setup",
"framework", "version", "processes", "threads", "global_batch", "per_process_batch", "ms_per_step",
"ms_min", "ms_max", "rank_ms_per_step" (each rank's median), "steps", "warmup", "final_loss",
"weights_identical" (setups of 2 processes)}. A worker that fails, or a setup still running after --timeout
seconds, gets that setup's workers killed (workers also die with the launcher); the other setups still run,
and the script exits 1 with messages on stderr that name the failed setups and show the worker's stderr.
"""
import argparse
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import common  # noqa: E402

GLOBAL_BATCH = 256
LAYERS = common.TRAIN_MODELS["large"][0]
# setup -> (processes, threads per process)
SETUPS = {
    "torch": {"ddp-gloo-2x1": (2, 1), "single-1x2": (1, 2)},
    "tf": {"mwms-2x1": (2, 1), "default-1x2": (1, 2)},
}
RESULT = "DISTRIBUTED-PEER-RESULT "  # prefix of a worker's result line on its stdout


class SetupFailed(Exception):
    pass


# ------------------------------------------------------------------------------------------ launcher

def free_ports(count):
    """`count` distinct TCP ports free on 127.0.0.1 now (bound to port 0, then released)."""
    socks, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def die_with_parent():
    """In a worker, before exec: SIGKILL when the launcher dies, even by SIGKILL (Linux prctl
    PR_SET_PDEATHSIG), so that no worker is left waiting in a collective."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def kill(procs):
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # each worker leads its own process group
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def tail(path, chars=3000):
    with open(path, errors="replace") as f:
        text = f.read()
    return text[-chars:].strip() or "(no output)"


def launch(args, setup):
    """Runs one setup's workers; returns their result dicts by rank, or raises SetupFailed."""
    world, threads = SETUPS[args.peer][setup]
    # torch: one rendezvous port; tf: one gRPC port per worker.
    ports = free_ports(1 if args.peer == "torch" else world)
    folder = tempfile.mkdtemp(prefix=f"distributed-{args.peer}-")
    procs, outs, errs = [], [], []
    try:
        for rank in range(world):
            outs.append(os.path.join(folder, f"rank{rank}.out"))
            errs.append(os.path.join(folder, f"rank{rank}.err"))
            cmd = [sys.executable, os.path.abspath(__file__), args.peer, "--worker", setup, "--rank", str(rank),
                   "--world", str(world), "--threads", str(threads), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--ports", ",".join(map(str, ports))]
            with open(outs[-1], "w") as out, open(errs[-1], "w") as err:
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                              start_new_session=True, preexec_fn=die_with_parent))
        deadline = time.monotonic() + args.timeout
        while True:
            codes = [p.poll() for p in procs]
            bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                rank, code = bad[0]
                kill(procs)
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                raise SetupFailed(f"worker {rank} of {world} {how}; its stderr:\n{tail(errs[rank])}")
            if all(c == 0 for c in codes):
                break
            if time.monotonic() > deadline:
                waiting = [r for r, c in enumerate(codes) if c is None]
                kill(procs)
                raise SetupFailed(f"timed out after {args.timeout:g} s (--timeout) waiting for worker(s) "
                                  f"{', '.join(map(str, waiting))}; killed them. Stderr of worker {waiting[0]}:\n"
                                  f"{tail(errs[waiting[0]])}")
            time.sleep(0.05)
        results = []
        for rank in range(world):
            with open(outs[rank]) as f:
                lines = [line[len(RESULT):] for line in f if line.startswith(RESULT)]
            if len(lines) != 1:
                raise SetupFailed(f"worker {rank} exited 0 but printed {len(lines)} result lines; its stderr:\n"
                                  f"{tail(errs[rank])}")
            results.append(json.loads(lines[0]))
        return results
    finally:
        kill(procs)
        for path in outs + errs:
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(folder)


def run_setup(args, setup):
    world, threads = SETUPS[args.peer][setup]
    results = launch(args, setup)
    times = results[0]["step_ms"]
    row = {"bench": "distributed", "peer": args.peer, "setup": setup, "framework": results[0]["framework"],
           "version": results[0]["version"], "processes": world, "threads": threads, "global_batch": GLOBAL_BATCH,
           "per_process_batch": GLOBAL_BATCH // world, "ms_per_step": statistics.median(times),
           "ms_min": min(times), "ms_max": max(times),
           "rank_ms_per_step": [statistics.median(r["step_ms"]) for r in results],
           "steps": len(times), "warmup": args.warmup, "final_loss": results[0]["loss"]}
    if world > 1:
        row["weights_identical"] = len({r["weights_sha256"] for r in results}) == 1
    return row


def launcher(args):
    setups = args.setups.split(",") if args.setups else list(SETUPS[args.peer])
    unknown = [s for s in setups if s not in SETUPS[args.peer]]
    if unknown:
        sys.exit(f"distributed_peers.py: --setups: unknown {args.peer} setup(s) {', '.join(unknown)}; "
                 f"expected some of {', '.join(SETUPS[args.peer])}")
    # A SIGTERM (a driver's timeout) unwinds through launch's `finally`, which kills the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    failures = []
    for setup in setups:
        try:
            row = run_setup(args, setup)
        except SetupFailed as e:
            failures.append(f"{args.peer} {setup}: {e}")
            print(f"distributed_peers.py: {failures[-1]}", file=sys.stderr, flush=True)
            continue
        if row.get("weights_identical") is False:
            failures.append(f"{args.peer} {setup}: the workers ended with different weights")
            print(f"distributed_peers.py: {failures[-1]}", file=sys.stderr, flush=True)
        common.emit(**row)
    if failures:
        sys.exit(f"distributed_peers.py: {len(failures)} of {len(setups)} setups failed (details above): "
                 + ", ".join(f.split(":")[0] for f in failures))


# ------------------------------------------------------------------------------------------- workers

def rank_batches(rank, world):
    """This rank's share of every global batch of the large MLP's data: [(x, y)] as numpy arrays."""
    x, y = common.large_data()
    per = GLOBAL_BATCH // world
    out = []
    for b in range(x.shape[0] // GLOBAL_BATCH):
        lo = b * GLOBAL_BATCH + rank * per
        out.append((x[lo:lo + per], y[lo:lo + per]))
    return out


def timed_steps(step, warmup, steps, barrier=None):
    """Per-step times in ms of `steps` calls of `step` (which returns once its step has finished), after
    `warmup` calls; `barrier` lines the ranks up before the timed steps. Returns (times, last step's value)."""
    for i in range(warmup):
        value = step(i)
    if barrier:
        barrier()
    times = []
    for i in range(warmup, warmup + steps):
        t = time.perf_counter()
        value = step(i)
        times.append((time.perf_counter() - t) * 1e3)
    return times, value


def report(framework, version, step_ms, weights, loss):
    digest = hashlib.sha256()
    for w in weights:
        digest.update(w.tobytes())
    print(RESULT + json.dumps({"framework": framework, "version": version, "step_ms": step_ms,
                               "weights_sha256": digest.hexdigest(), "loss": float(loss)}), flush=True)


def torch_worker(args):
    import datetime

    import torch
    torch.set_num_threads(args.threads)
    distributed = args.world > 1
    if distributed:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.ports[0]}", rank=args.rank,
                                world_size=args.world, timeout=datetime.timedelta(seconds=args.collective_timeout))
    torch.manual_seed(0)
    mods = []
    for a, b in zip(LAYERS[:-1], LAYERS[1:]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*mods[:-1])
    net = DistributedDataParallel(model) if distributed else model  # DDP broadcasts rank 0's weights
    opt = torch.optim.Adam(model.parameters(), lr=common.ADAM["lr"], betas=(0.9, 0.999), eps=common.ADAM["epsilon"])
    loss_fn = torch.nn.CrossEntropyLoss()  # the mean over this rank's 128; DDP averages the gradients
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in rank_batches(args.rank, args.world)]

    def step(i):
        xb, yb = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()  # DDP: the gradient allreduce, overlapped with the backward pass
        opt.step()
        return loss.item()

    times, loss = timed_steps(step, args.warmup, args.steps, barrier=dist.barrier if distributed else None)
    weights = [p.detach().numpy() for p in model.parameters()]
    report("pytorch", torch.__version__, times, weights, loss)
    if distributed:
        dist.destroy_process_group()


def tf_worker(args):
    if args.world > 1:
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in args.ports]},
            "task": {"type": "worker", "index": args.rank}})
    import tensorflow as tf
    import tf_keras
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if args.world > 1 else tf.distribute.get_strategy()
    if strategy.num_replicas_in_sync != args.world:
        raise RuntimeError(f"expected {args.world} replicas in sync, got {strategy.num_replicas_in_sync}")
    x, y = common.large_data()
    with strategy.scope():
        tf_keras.utils.set_random_seed(0)  # same initial values on every worker (MWMS also broadcasts them)
        model = tf_keras.Sequential([tf_keras.Input(shape=(LAYERS[0],))]
                                    + [tf_keras.layers.Dense(n, activation="relu") for n in LAYERS[1:-1]]
                                    + [tf_keras.layers.Dense(LAYERS[-1])])
        opt = tf_keras.optimizers.legacy.Adam(learning_rate=common.ADAM["lr"], beta_1=common.ADAM["beta_1"],
                                              beta_2=common.ADAM["beta_2"], epsilon=common.ADAM["epsilon"])
        loss_obj = tf_keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=tf_keras.losses.Reduction.NONE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH, drop_remainder=True).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))

    @tf.function
    def train_step(it):
        def step_fn(xb, yb):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(loss_obj(yb, model(xb, training=True)), global_batch_size=GLOBAL_BATCH)
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))  # sums the gradients across workers
            return loss
        per_replica = strategy.run(step_fn, args=next(it))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    times, loss = timed_steps(lambda i: train_step(iterator).numpy(), args.warmup, args.steps)
    report("tensorflow", f"tensorflow {tf.__version__}, tf_keras {tf_keras.__version__}", times,
           model.get_weights(), loss)


# ---------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("peer", choices=list(SETUPS))
    ap.add_argument("--setups", default="", help="comma-separated setups (default: all of the peer's; "
                    "torch: ddp-gloo-2x1, single-1x2; tf: mwms-2x1, default-1x2)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps (the median is reported)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a setup's workers may take in all")
    ap.add_argument("--collective-timeout", type=float, default=120, help=argparse.SUPPRESS)
    # Internal: how the launcher starts a worker.
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--world", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--ports", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.timeout <= 0:
        ap.error(f"--steps must be ≥ 1, --warmup ≥ 0 and --timeout > 0; got {args.steps}, {args.warmup}, {args.timeout:g}")
    if args.worker:
        args.ports = [int(p) for p in args.ports.split(",") if p]
        (torch_worker if args.peer == "torch" else tf_worker)(args)
    else:
        launcher(args)


if __name__ == "__main__":
    main()
