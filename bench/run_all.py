#!/usr/bin/env python3
"""Builds Descent in release, runs every Descent benchmark and every peer (PyTorch, TensorFlow/tf-keras,
JAX/optax; Python's json.loads for the JSON benchmark) in one run on this machine, and writes BENCHMARKS.md.

    bench/run_all.sh                      # or: make bench
    python3 bench/run_all.py --peers torch,tf,jax --output BENCHMARKS.md
    bench/run_all.sh --no-build --only json   # one part; writes .build-release/BENCHMARKS-json.md

--only PARTS runs some of the parts: `optimizers` (the dense, bandwidth, sparse and training benchmarks,
their peers and the head-to-head pairs), `json` (`descent bench json` and bench/peers/json_parse.py
with the Python that runs this script, interleaved) and `checkpoint` (`descent bench checkpoint` and
bench/peers/checkpoint_peers.py with PyTorch and tf_keras, in the same venvs) and `distributed` (multi-worker
training on Open MPI: `mpirun -np 2 descent bench train --model large --strategy multi-worker` with 1 thread
per rank and with the default threads, Descent's 1-process 2-thread baseline, `mpirun -np 2 descent bench
allreduce`, and bench/peers/distributed_peers.py: PyTorch DDP and TF MultiWorkerMirroredStrategy, for the
peers in --peers), `cnn` (the digits CNN of `descent train --model cnn`, issue 13: Descent, tf_keras fit and
PyTorch eager epochs, bench/peers/cnn_peers.py) and `keras3` (the Keras 3 family, issue 12: `descent bench optimizer` with Keras 3 configs of
AdamW, Lion, Adafactor and Muon, torch_bench.py and jax_bench.py `--only keras3`, then --pairs interleaved
Descent/PyTorch AdamW pairs). A partial run never writes the repository's
BENCHMARKS.md or bench/results.jsonl: its report goes to --output (default
.build-release/BENCHMARKS-<parts>.md) and its raw results beside it (.jsonl).

The peers run from virtual environments outside the repository, in --venv-root (default: the
repository's parent folder): venv-torch, venv-tf, venv-jax. A missing one is created with pip from
bench/peers/requirements-*.txt (see bench/README.md for the CPU-only PyTorch route). Raw results go to
bench/results.jsonl (a full run). The report itself is bench/report.py.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from report import BENCH, C_FLAGS, PARTS, REPO, report

DESCENT = os.path.join(REPO, ".build-release", "release", "descent")
# Part `distributed`: 2 ranks on the 2 cores (as root, Open MPI refuses to run without --allow-run-as-root).
MPIRUN = ["mpirun", "--allow-run-as-root", "-np", "2"]
DISTRIBUTED_TIMEOUT = 600  # seconds one command of part `distributed` may take before it is killed
C_CEILING = os.path.join(REPO, ".build-release", "c_fused_update")
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
        self.json_docs = None  # the JSON benchmark's temporary document directory

    def json_lines(self, tag, argv, env=None, timeout=None):
        """Runs argv, keeps its JSON lines (tagged), returns them. With `timeout` (seconds), a command still
        running then is stopped (SIGTERM to its process group, SIGKILL 10 s later) and counts as failed; a
        command that cannot start (missing program) counts as failed too."""
        line = " ".join(shlex.quote(a) for a in argv)
        log(f"$ {line}")
        start = time.time()
        proc = run_bounded(argv, env, timeout)
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


def run_bounded(argv, env, timeout):
    """subprocess.run's result for argv. With a timeout the command runs in its own process group, so that
    stopping it reaches its children too (a launcher's workers; mpirun passes SIGTERM on to its ranks). A
    timeout or a failure to start comes back as a CompletedProcess with a non-zero status and the reason at
    the end of stderr."""
    group = timeout is not None
    try:
        proc = subprocess.Popen(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, cwd=REPO, start_new_session=group)
    except OSError as e:
        return subprocess.CompletedProcess(argv, 127, "", f"cannot run {argv[0]}: {e}")
    try:
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        out, err = stop(proc, group)
        return subprocess.CompletedProcess(argv, 124, out, err + f"\ntimed out after {timeout:g} s; stopped "
                                           "(SIGTERM to its process group, then SIGKILL)")
    finally:
        if proc.poll() is None:  # an exception (Ctrl-C) while it ran
            stop(proc, group)


def stop(proc, group, grace=10):
    """SIGTERM to proc (its process group when `group`), SIGKILL after `grace` seconds; its remaining output."""
    out = err = ""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            out, err = proc.communicate(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
        except ValueError:  # its pipes were already closed
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
    return out or "", err or ""


def parse_parts(text):
    """--only's value: the chosen parts in PARTS order; argparse error on an unknown or empty list."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(PARTS)}; got {text!r}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    return [p for p in PARTS if p in names]


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
    try:
        info["mpi"] = sh(["mpirun", "--version"]).splitlines()[0].strip()
    except Exception:
        info["mpi"] = "?"
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default="torch,tf,jax", help="comma-separated: torch, tf, jax (empty: none)")
    ap.add_argument("--venv-root", default=os.path.dirname(REPO), help="where venv-torch, venv-tf, venv-jax live")
    ap.add_argument("--output", help="the report (default: BENCHMARKS.md; with --only: "
                    ".build-release/BENCHMARKS-<parts>.md; a partial run refuses BENCHMARKS.md)")
    ap.add_argument("--only", type=parse_parts, default=list(PARTS),
                    help=f"comma-separated parts to run: {', '.join(PARTS)} (default: all)")
    ap.add_argument("--no-build", action="store_true", help="use the existing .build-release binary")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every benchmark (best round kept)")
    ap.add_argument("--checkpoint-folder", default=None,
                    help="where the checkpoint benchmark writes its 604 MB files (default: the temporary folder; "
                         "use a folder on the disk to measure)")
    ap.add_argument("--pairs", type=int, default=9,
                    help="interleaved Descent/PyTorch pairs for the targets' head-to-head ratios (0: none)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    benchmarks_md = os.path.join(REPO, "BENCHMARKS.md")
    partial = set(args.only) != set(PARTS)
    if args.output is None:
        args.output = (os.path.join(REPO, ".build-release", f"BENCHMARKS-{'-'.join(args.only)}.md") if partial
                       else benchmarks_md)
    if partial and os.path.realpath(args.output) == os.path.realpath(benchmarks_md):
        ap.error(f"--only {','.join(args.only)} is a partial run; it would replace the other sections of "
                 f"{benchmarks_md}: give another --output")
    # A partial run keeps the committed raw results too: its JSON lines go beside its report.
    args.results = os.path.splitext(args.output)[0] + ".jsonl" if partial else os.path.join(BENCH, "results.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    t0 = time.time()
    run = Run()
    if not args.no_build:
        log("$ make release")
        start = time.time()
        subprocess.run(["make", "release"], cwd=REPO, check=True, stdout=sys.stderr)
        run.commands.append(("build", "make release", time.time() - start))
    # The C-level ceiling of the dense updates (bench/c/fused_update.c), when a C compiler is present.
    have_c = "optimizers" in args.only and shutil.which("cc") is not None
    if have_c:
        line = "cc " + " ".join(C_FLAGS) + " bench/c/fused_update.c -lm -o .build-release/c_fused_update"
        log(f"$ {line}")
        start = time.time()
        os.makedirs(os.path.dirname(C_CEILING), exist_ok=True)
        subprocess.run(["cc", *C_FLAGS, os.path.join(BENCH, "c", "fused_update.c"), "-lm", "-o", C_CEILING],
                       cwd=REPO, check=True)
        run.commands.append(("build", line, time.time() - start))
    peers = [p for p in args.peers.split(",") if p] if "optimizers" in args.only else []
    pythons = {p: ensure_venv(args.venv_root, p) for p in peers}
    info = machine_info()

    versions = {}
    if "json" in args.only:
        run.json_docs = tempfile.mkdtemp(prefix="descent-json-")
    try:
        run_rounds(run, args, peers, pythons, have_c, versions)
    finally:
        if run.json_docs:
            shutil.rmtree(run.json_docs, ignore_errors=True)

    seconds = time.time() - t0
    with open(args.results, "w") as f:
        for tag, r in run.results:
            f.write(json.dumps(dict(r, tag=tag)) + "\n")
    with open(args.output, "w") as f:
        f.write(report(run, info, versions, args, started, seconds))
    log(f"wrote {args.output} and {args.results} ({seconds / 60:.1f} min)")
    return 1 if run.failures else 0


def run_rounds(run, args, peers, pythons, have_c, versions):
    """The rounds of the chosen parts, then the head-to-head pairs (part `optimizers`, with PyTorch)."""
    for round_ in range(args.rounds):
        log(f"--- round {round_ + 1} of {args.rounds}")
        run.round = round_
        if "optimizers" in args.only:
            optimizer_round(run, peers, pythons, have_c, versions)
        if "checkpoint" in args.only:
            folder = tempfile.mkdtemp(prefix="descent-ckpt-", dir=args.checkpoint_folder)
            try:
                run.json_lines("descent-checkpoint", [DESCENT, "bench", "checkpoint", "--json", "--folder", folder])
                for peer, tag in [("torch", "torch-checkpoint"), ("tf", "tf-checkpoint")]:
                    python = ensure_venv(args.venv_root, peer)
                    run.json_lines(tag, [python, os.path.join(BENCH, "peers", "checkpoint_peers.py"),
                                         "torch" if peer == "torch" else "tf_keras", "--folder", folder])
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        if "distributed" in args.only:
            distributed_round(run, args, versions)
        if "keras3" in args.only:
            keras3_round(run, args, versions)
        if "cnn" in args.only:
            cnn_round(run, args, round_)
        if "json" in args.only:
            # Descent writes the documents and times them, then the same Python times json.loads on them.
            run.json_lines("descent-json", [DESCENT, "bench", "json", "--json", "--save-documents", run.json_docs])
            rows = run.json_lines("python-json", [sys.executable, os.path.join(BENCH, "peers", "json_parse.py"),
                                                  run.json_docs, "--json"])
            meta = next((r for r in rows if r.get("bench") == "meta"), None)
            if meta:
                accel = "with" if meta.get("c_accelerator") else "**without**"
                versions["python-json"] = f"Python {meta['version']}, `json` {accel} its C accelerator (`{sys.executable}`)"
    if "optimizers" in args.only:
        head_to_head(run, args, pythons, have_c)
    if "keras3" in args.only:
        keras3_head_to_head(run, args)


# Part `keras3`: Descent's commands of one round, (tag suffix, optimizer class, workload arguments, steps).
KERAS3_DESCENT = (
    [("adamw", "AdamW", ["--params", str(p), "--tensors", str(t)], 50) for p, t in [(10_000_000, 10), (1_000_000, 1000)]]
    + [("lion", "Lion", ["--params", str(p), "--tensors", str(t)], 50) for p, t in [(10_000_000, 10), (1_000_000, 1000)]]
    + [("adafactor", "Adafactor", ["--params", str(p), "--tensors", str(t)], 20) for p, t in [(10_000_000, 10), (1_000_000, 1000)]]
    + [("adafactor", "Adafactor", ["--matrix", m, "--tensors", str(k)], 20) for m, k in [("1024x1024", 4), ("1024x4096", 2)]]
    + [("muon", "Muon", ["--matrix", "256x256", "--tensors", "4"], 20), ("muon", "Muon", ["--matrix", "1024x1024", "--tensors", "4"], 3)]
)


def cnn_round(run, args, round_):
    """One round of part `cnn` (issue 13): the digits CNN's epochs in Descent, tf_keras and PyTorch, seconds
    apart; in the first round also `descent train --model cnn` for its test accuracy."""
    run.json_lines("cnn-descent", [DESCENT, "bench", "train", "--model", "cnn", "--epochs", "6", "--threads", "2", "--json"])
    for peer, tag in [("tf", "cnn-tf"), ("torch", "cnn-torch")]:
        python = ensure_venv(args.venv_root, peer)
        run.json_lines(tag, [python, os.path.join(BENCH, "peers", "cnn_peers.py"), "--peer", peer, "--threads", "2", "--epochs", "6"])
    if round_ == 0:
        run.json_lines("cnn-accuracy", [DESCENT, "train", "--model", "cnn", "--json", "--quiet"])


def keras3_config(cls):
    """Keras 3's config of `cls` with its defaults, as `descent bench optimizer --optimizer` takes it."""
    return json.dumps({"module": "keras.optimizers", "class_name": cls, "config": {}})


def keras3_descent(run, tag, only=None):
    for name, cls, workload, steps in KERAS3_DESCENT:
        if only is None or name in only:
            run.json_lines(tag, [DESCENT, "bench", "optimizer", "--optimizer", keras3_config(cls), *workload,
                                 "--steps", str(steps), "--json"])


def keras3_round(run, args, versions):
    """One round of part `keras3`: Descent's Keras 3 optimizers, then PyTorch's and optax's."""
    keras3_descent(run, "k3-descent")
    for peer, tag in [("torch", "k3-torch"), ("jax", "k3-jax")]:
        if peer not in args.peers.split(","):
            continue
        python = ensure_venv(args.venv_root, peer)
        rows = run.json_lines(tag, [python, os.path.join(BENCH, "peers", PEERS[peer][1]), "--only", "keras3"])
        meta = next((r for r in rows if r.get("bench") == "meta"), None)
        if meta and peer not in versions:
            versions[peer] = (f"torch {meta['version']} (CPU capability {meta.get('cpu_capability')})" if peer == "torch"
                              else f"jax/jaxlib {meta['version']}, optax {meta['optax']}, {meta['devices']}")


def keras3_head_to_head(run, args):
    """Part `keras3`'s pairs: Descent's Keras 3 AdamW, then torch.optim.AdamW(fused=True), seconds apart."""
    if "torch" not in args.peers.split(","):
        return
    python = ensure_venv(args.venv_root, "torch")
    for i in range(args.pairs):
        log(f"--- Keras 3 head-to-head pair {i + 1} of {args.pairs}")
        run.round = i
        keras3_descent(run, "k3h-descent", only={"adamw"})
        run.json_lines("k3h-torch", [python, os.path.join(BENCH, "peers", "torch_bench.py"), "--only", "keras3",
                                     "--optimizers", "adamw", "--variants", "fused=True"])


def distributed_round(run, args, versions):
    """One round of part `distributed`: Descent's 1-process baseline, Descent on 2 ranks (1 thread each, then
    the default threads), the peers on 2 processes (and their 1-process baselines), Descent's allreduce."""
    train = [DESCENT, "bench", "train", "--model", "large"]
    t = DISTRIBUTED_TIMEOUT
    run.json_lines("dist-descent-single", train + ["--threads", "2", "--json"], timeout=t)
    run.json_lines("dist-descent-train-1t", MPIRUN + ["-x", "DESCENT_NUM_THREADS=1"] + train
                   + ["--strategy", "multi-worker", "--json"], timeout=t)
    for peer in [p for p in ("torch", "tf") if p in args.peers.split(",")]:
        python = ensure_venv(args.venv_root, peer)
        rows = run.json_lines(f"dist-{peer}", [python, os.path.join(BENCH, "peers", "distributed_peers.py"), peer],
                              timeout=t)
        version = next((r.get("version") for r in rows if r.get("bench") == "distributed"), None)
        if version and peer not in versions:
            versions[peer] = f"torch {version}" if peer == "torch" else version
    run.json_lines("dist-descent-train", MPIRUN + train + ["--strategy", "multi-worker", "--json"], timeout=t)
    run.json_lines("dist-descent-allreduce", MPIRUN + [DESCENT, "bench", "allreduce", "--json"], timeout=t)


def optimizer_round(run, peers, pythons, have_c, versions):
    """One round of part `optimizers`: every Descent benchmark, the C ceiling, then each peer."""
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


def head_to_head(run, args, pythons, have_c):
    """The head-to-head pairs (with PyTorch only)."""
    # Head-to-head: the targets' comparisons, Descent and PyTorch alternating seconds apart, so that both
    # sides of each ratio see the same state of the machine.
    if "torch" in pythons:
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


if __name__ == "__main__":
    sys.exit(main())
