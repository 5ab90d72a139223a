# rsm: the two commands a user needs are `make demo` and `make test`.
CARGO ?= cargo
SEEDS ?= 200

.PHONY: test fmt-check clippy unit demo sim bench

test: fmt-check clippy unit

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

bench:
	$(CARGO) bench --workspace

PROTOCOL ?= sequencer
sim:
	$(CARGO) run --release -p rsm-examples --bin rsm-sim -- --protocol $(PROTOCOL) --seeds 0..$(SEEDS)

demo:
	$(CARGO) run --release -p rsm-examples --bin rsm-sim -- --protocol sequencer --seeds 0..50
