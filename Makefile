# Entry points. `make test` is what CI runs (.ci/run); `make demo` runs the
# operator against a local control plane and shopify-sim.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test demo crds docs mdbook control-plane helm health mariadb prometheus third-party-crds image node-runtime fmt lint

## Build helm, the control plane with its node binaries and the health
## judge (all cached), install MariaDB, Prometheus and the node's runtime
## (once), fetch third-party CRDs (cached), build the images, then format
## check, lints and every test: every test binary runs even when one fails,
## and the last line sums them up (hack/cargo-test.sh).
test: helm control-plane health mariadb prometheus third-party-crds node-runtime image mdbook
	$(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" HELM_BIN="$$(hack/helm.sh)" HEALTH_BIN="$$(hack/health.sh)" MARIADB_BIN_DIR="$$(hack/mariadb.sh)" PROMETHEUS_BIN_DIR="$$(hack/prometheus.sh)" THIRD_PARTY_CRDS="$$(hack/crds.sh)" NODE_RUNTIME_DIR="$$(hack/node-runtime.sh)" IMAGE_DIR="$$(hack/image.sh path)" MDBOOK_BIN="$$(hack/mdbook.sh)" CARGO="$(CARGO)" hack/cargo-test.sh --workspace

## The operator's and the simulator's images, offline, from the shipped
## Dockerfiles (static release binaries on scratch, built with buildah):
## OCI archives target/image/shopify-operator.tar and shopify-sim.tar, and
## the test node's pause image (target/image/pause.tar).
image:
	hack/image.sh >/dev/null

## Install Debian's containerd, runc, CNI plugins and iptables (once, no
## service left running); the in-cluster tests' node (tests/in_cluster.rs)
## runs them.
node-runtime:
	hack/node-runtime.sh >/dev/null

## Local control plane + shopify-sim with the seed shops + the operator;
## stays up until Ctrl-C (DEMO_EXIT=1 stops after the Ingress host change).
demo: control-plane
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" $(CARGO) run --release -p shopify-demo

## Regenerate crds/ from the Rust types (and the chart's copy of it).
crds:
	$(CARGO) run -q -p shopify-operator --bin shopify-operator -- crd > crds/shopifyshop.yaml
	$(CARGO) run -q -p shopify-operator --bin shopify-operator -- crd --kind ShopifyApp > crds/shopifyapp.yaml
	cp crds/shopifyshop.yaml crds/shopifyapp.yaml charts/shopify-operator/crds/

## The book (docs/, mdBook): regenerate its reference pages from the code
## (CRDs, CLI, metrics, reasons), then build it into target/book.
docs: mdbook
	$(CARGO) run -q -p shopify-operator --bin shopify-operator -- docs --out docs/src/reference
	"$$(hack/mdbook.sh)" build docs

## Install mdbook from crates.io into ~/.cache/shopify-operator (once per
## version); `make docs` and the book's test (tests/docs.rs) run it.
mdbook:
	hack/mdbook.sh >/dev/null

## Convergence benchmark (benches/converge.rs): N shops x 8 topics against
## shopify-sim (50 ms per request) and the local control plane, the operator
## as a release process. SHOPS=10,100,1000,3000 (default 1000); writes
## target/bench/converge.json and converge.svg and prints a table.
.PHONY: bench
bench: control-plane
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" SHOPS="$(SHOPS)" $(CARGO) bench -p shopify-operator --bench converge

## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
## kubelet, kube-proxy and kubectl from pinned Go modules into ~/.cache/shopify-operator (once per version).
control-plane:
	hack/control-plane.sh >/dev/null

## Build helm from its pinned Go module into ~/.cache/shopify-operator/helm
## (once per version); the chart tests (tests/chart.rs) run it.
helm:
	hack/helm.sh >/dev/null

## Build hack/health (kstatus's status.Compute and Argo CD's Lua health
## convention, from pinned Go modules) into ~/.cache/shopify-operator/health
## (once per source); tests/health.rs judges live shops with it.
health:
	hack/health.sh >/dev/null

## Install Debian's mariadb-server (once, no service left running); the
## import tests (tests/import.rs) start their own mariadbd from it.
mariadb:
	hack/mariadb.sh >/dev/null

## Install Debian's prometheus (the server and promtool; once, no service
## left running); the alert tests (tests/alerts.rs) run both.
prometheus:
	hack/prometheus.sh >/dev/null

## The Prometheus Operator's CRDs from its Go module (cached); the chart
## tests apply the PrometheusRule and ServiceMonitor with them.
third-party-crds:
	hack/crds.sh >/dev/null

fmt:
	$(CARGO) fmt

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
