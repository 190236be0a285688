#!/usr/bin/env bash
# Regenerates Sources/DescentTensorBoard/Generated/*.pb.swift from the trimmed TensorBoard protos in
# Sources/DescentTensorBoard/Protos/ (their header says where they come from), and first checks those
# protos against tensorboard 2.21.0's own descriptors (scripts/check_tensorboard_protos.py).
#
# The generated code is committed: a normal `swift build` needs neither protoc nor protoc-gen-swift (the
# package uses only swift-protobuf's `SwiftProtobuf` library, never its build plugin).
#
# Tools (override with the environment variables):
#   VENV              a venv with `grpcio-tools` (its `python -m grpc_tools.protoc` is protoc) and
#                     `tensorboard==2.21.0` (for the check); default /work/venv-tb, created if missing
#                     (from PyPI: python3 -m venv "$VENV" && "$VENV/bin/pip" install grpcio-tools tensorboard==2.21.0)
#   PROTOC_GEN_SWIFT  protoc-gen-swift of swift-protobuf 1.39.0; default: built (debug, ~1 min) from a
#                     clone of swift-protobuf at tag 1.39.0 in /tmp/swift-protobuf-1.39.0
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PROTOS="$ROOT/Sources/DescentTensorBoard/Protos"
OUT="$ROOT/Sources/DescentTensorBoard/Generated"
VENV="${VENV:-/work/venv-tb}"
SWIFT_PROTOBUF_TAG=1.39.0

if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet grpcio-tools tensorboard==2.21.0
fi
PY="$VENV/bin/python"
"$PY" -c "import grpc_tools, tensorboard; assert tensorboard.__version__ == '2.21.0', tensorboard.__version__"

if [[ -z "${PROTOC_GEN_SWIFT:-}" ]]; then
  SRC=/tmp/swift-protobuf-$SWIFT_PROTOBUF_TAG
  if [[ ! -d "$SRC" ]]; then
    git -c advice.detachedHead=false clone --quiet --branch "$SWIFT_PROTOBUF_TAG" https://github.com/apple/swift-protobuf "$SRC"
  fi
  (cd "$SRC" && swift build --product protoc-gen-swift >/dev/null)
  PROTOC_GEN_SWIFT="$(cd "$SRC" && swift build --product protoc-gen-swift --show-bin-path)/protoc-gen-swift"
fi
"$PROTOC_GEN_SWIFT" --version

# 1. The trimmed protos must match tensorboard's field for field.
DESC="$(mktemp)"
trap 'rm -f "$DESC"' EXIT
(cd "$PROTOS" && "$PY" -m grpc_tools.protoc -I. --include_imports --descriptor_set_out="$DESC" ./*.proto)
"$PY" "$ROOT/scripts/check_tensorboard_protos.py" "$DESC"

# 2. The Swift code: public types, so that users can read events back.
rm -f "$OUT"/*.pb.swift
mkdir -p "$OUT"
(cd "$PROTOS" && "$PY" -m grpc_tools.protoc -I. \
  --plugin=protoc-gen-swift="$PROTOC_GEN_SWIFT" \
  --swift_opt=Visibility=Public \
  --swift_out="$OUT" ./*.proto)
ls -l "$OUT"
