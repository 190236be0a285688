#!/usr/bin/env bash
# Installs what Descent's build needs on Debian/Ubuntu: OpenBLAS (matrix multiply), zlib (the bundled
# gzip data set), libhdf5 (Keras' .h5 files), minizip (.keras zips), Open MPI (multi-worker training: libopenmpi-dev and mpirun from openmpi-bin) and pkg-config (SwiftPM finds them through it). Swift 6.1+ itself must already be installed (swift.org).
set -euo pipefail

if ! command -v swift >/dev/null 2>&1; then
    echo "error: 'swift' was not found. Install Swift 6.1 or newer from https://swift.org/install/linux/ first." >&2
    exit 1
fi

if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openblas && pkg-config --exists zlib && pkg-config --exists hdf5 && pkg-config --exists minizip && pkg-config --exists ompi-c && command -v mpirun >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "Installing libopenblas-dev, zlib1g-dev, libhdf5-dev, libminizip-dev, libopenmpi-dev, openmpi-bin and pkg-config with apt-get..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev zlib1g-dev libhdf5-dev libminizip-dev libopenmpi-dev openmpi-bin pkg-config >/dev/null
pkg-config --exists openblas && pkg-config --exists zlib && pkg-config --exists hdf5 && pkg-config --exists minizip && pkg-config --exists ompi-c
