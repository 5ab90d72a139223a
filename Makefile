# rsm: the two commands a user needs are `make demo` and `make test`.
CARGO ?= cargo
SEEDS ?= 200

.PHONY: test fmt-check clippy verbs-deps unit demo sim bench loom python browser-deps browser-test

test: fmt-check clippy unit loom python browser-test

fmt-check:
	$(CARGO) fmt --all -- --check

# Lints run twice: with default features (what a user who adds nothing builds) and with every
# optional feature (rsm-tcp's tls, the tokio runners, rsm-rdma's verbs), which is also the one
# feature set `unit` builds and tests, so the tree is compiled once for testing.
clippy: verbs-deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# The RDMA verbs backend builds rdma-core's verbs library with cmake and generates its
# bindings with bindgen, which needs libclang. Installed only when missing.
verbs-deps:
	@command -v cmake >/dev/null && ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq cmake libclang-dev; }

# Chromium from Debian, for the headless-browser check of the simulator's HTML timeline.
# Installed only when missing; needs no network beyond apt.
browser-deps:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

# One page load: the timeline of a violating seed shows its violation marker and lane labels.
# Built with unit's feature set, so nothing is compiled twice.
browser-test: browser-deps
	$(CARGO) test --workspace --all-features --test timeline_browser -- --ignored

unit: verbs-deps
	$(CARGO) test --workspace --all-features

# Model checking of rsm-sync and of rsm-actor's inbox, wake-up, drain and timers under loom, in
# its own target dir so the rest of the tree is not rebuilt. rsm-actor's models run whole small
# systems, so they get one preemption (see io-adapters/actor/tests/loom.rs for a longer search).
loom:
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 $(CARGO) test -p rsm-sync --release --target-dir target/loom --test loom
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=1 $(CARGO) test -p rsm-actor --release --target-dir target/loom --test loom

bench:
	$(CARGO) bench --workspace

PROTOCOL ?= sequencer
sim:
	$(CARGO) run --release -p rsm-examples --bin rsm-sim -- --protocol $(PROTOCOL) --seeds 0..$(SEEDS)

# The replicated KV demo: 3 server processes on loopback, a client workload, the leader
# killed and restarted half-way, a report with latencies and the linearizability verdict.
demo:
	$(CARGO) run --release -p rsm-kv --bin rsm-kv-demo

# The Python module `rsm`: built in release mode into a virtual environment this target
# creates (.venv), then tested with pytest, type-checked with mypy, and its stubs checked
# against the built module with mypy's stubtest.
VENV ?= .venv
PYTHON ?= python3
PY_TOOLS = "maturin==1.16.*" "pytest==9.*" "mypy==1.*"
$(VENV)/.tools:
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q $(PY_TOOLS)
	touch $@
python: $(VENV)/.tools
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release -q -m python/Cargo.toml
	$(VENV)/bin/python -m pytest python/tests -q
	cd python && ../$(VENV)/bin/mypy --strict tests examples bench
	cd python && ../$(VENV)/bin/python -m mypy.stubtest rsm._rsm
