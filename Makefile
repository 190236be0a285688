# Descent: the two set-up commands are `make demo` (the main job) and `make test`.
# Each installs what the build needs first (scripts/install-deps.sh).

SWIFT ?= swift
# Release builds for this machine's CPU. The manifest stays free of unsafe flags, so these are passed
# here (as Rust projects pass `-C target-cpu=native`).
RELEASE = -c release -Xswiftc -target-cpu -Xswiftc native --scratch-path .build-release

.PHONY: deps demo test build release bench fuzz golden clean sanitize

deps:
	@./scripts/install-deps.sh

## The main job (see README): train the digits MLP with Adam, write curves.svg.
demo: deps
	$(SWIFT) run $(RELEASE) descent train --plot curves.svg

## The test suite, in debug, as CI runs it.
test: deps
	$(SWIFT) test

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build $(RELEASE)

## The test suite under ThreadSanitizer, then AddressSanitizer with the buffer cache off
## (DESCENT_BUFFER_CACHE=0); fails on any report (see scripts/sanitize.sh). Separate scratch paths
## (.build-tsan, .build-asan); each build takes several minutes.
sanitize: deps
	SWIFT="$(SWIFT)" scripts/sanitize.sh

## Opt-in, not part of `make test`: build in release, run every Descent benchmark and the PyTorch,
## TensorFlow/tf-keras and JAX peers (venvs in ../venv-*, created with pip if missing) in one run, and
## write BENCHMARKS.md (about 7 minutes; see bench/README.md).
bench: deps
	bench/run_all.sh

## Opt-in, not part of `make test`'s build: build the libFuzzer targets in Fuzz/ (a separate package,
## instrumented with ASan), replay the committed crash reproducers, then fuzz each target for
## FUZZ_SECONDS seconds (default 60). Exits non-zero on any finding; see Fuzz/README.md.
FUZZ_SECONDS ?= 60
fuzz: deps
	Fuzz/replay-regressions.sh
	Fuzz/run.sh all $(FUZZ_SECONDS)

## Regenerate the TensorFlow golden fixtures (needs PyPI; see scripts/golden/README.md).
golden:
	python3 -m venv .venv-golden
	.venv-golden/bin/pip install -q -r scripts/golden/requirements.txt
	.venv-golden/bin/python scripts/golden/generate_optimizers.py
	.venv-golden/bin/python scripts/golden/generate_configs.py

clean:
	rm -rf .build .build-release .build-tsan .build-asan Fuzz/.build-fuzz
