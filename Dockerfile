# syntax=docker/dockerfile:1
#
# The shopify-operator image: one statically linked binary on an empty base.
# No shell, no package manager, no libc or CA bundle to patch: TLS roots
# (webpki-roots) and time zones (jiff's bundled tzdb) are compiled in, and
# glibc's static resolver reads the /etc/resolv.conf the kubelet mounts.
# Runs as UID 65532; the chart (charts/shopify-operator) runs it with `run`.
#
# The binary is built first, outside the image (no builder image needed, so
# no registry is either). `make image` does exactly this (hack/image.sh),
# with buildah; with Docker it is:
#
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
#     --target x86_64-unknown-linux-gnu -p shopify-operator --bin shopify-operator
#   docker build --build-arg VERSION=0.1.0 -t shopify-operator:0.1.0 .

FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="shopify-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps Shopify shops' webhooks, tokens and sync jobs in cluster state" \
      org.opencontainers.image.source="https://github.com/shopify-operator/shopify-operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY target/x86_64-unknown-linux-gnu/release/shopify-operator /shopify-operator
USER 65532:65532
# /healthz, /readyz, /metrics (HTTP_ADDR).
EXPOSE 8080
# One glibc malloc arena: less memory held back than per-thread arenas
# (benches/converge.rs measured 1, 2 and the default).
ENV MALLOC_ARENA_MAX=1
ENTRYPOINT ["/shopify-operator"]
CMD ["run"]
