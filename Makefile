# rsm: the two commands a user needs are `make demo` and `make test`.
CARGO ?= cargo
SEEDS ?= 200

.PHONY: test fmt-check clippy unit demo sim bench raft-seeds

test: fmt-check clippy unit

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

bench:
	$(CARGO) bench --workspace

# Any range of Raft simulator seeds (`make test` runs 0..1000): make raft-seeds RAFT_SEEDS=0..20000
RAFT_SEEDS ?= 0..1000
raft-seeds:
	RAFT_SEEDS=$(RAFT_SEEDS) $(CARGO) test --release -p rsm-consensus --test sim_raft -- --ignored seeds_from_env
