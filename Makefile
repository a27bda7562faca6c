# Entry points. `make test` is what CI runs (.ci/run); `make demo` runs the
# operator against a local control plane and shopify-sim.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test demo crds control-plane fmt lint

## Build the control plane (cached), then format check, lints and every test.
test: control-plane
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" $(CARGO) test

## Local control plane + shopify-sim with the seed shops + the operator.
demo: control-plane
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" $(CARGO) run --release --bin shopify-demo

## Regenerate crds/ from the Rust types.
crds:
	$(CARGO) run -q --bin shopify-operator -- crd > crds/shopifyshop.yaml

## Build etcd, kube-apiserver, kube-controller-manager and kubectl from
## pinned Go modules into ~/.cache/shopify-operator (once per version).
control-plane:
	hack/control-plane.sh >/dev/null

fmt:
	$(CARGO) fmt

lint:
	$(CARGO) clippy --all-targets -- -D warnings
