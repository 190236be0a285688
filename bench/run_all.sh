#!/usr/bin/env bash
# Builds Descent in release, runs every Descent benchmark and every peer (PyTorch, TensorFlow/tf-keras,
# JAX/optax) in one run on this machine, and writes BENCHMARKS.md. Options: see bench/run_all.py --help.
# The peers' virtual environments live outside the repository (default: its parent folder, venv-*);
# missing ones are created with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/run_all.py "$@"
