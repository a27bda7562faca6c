# syntax=docker/dockerfile:1
#
# The shopify-operator image: only the `shopify-operator` binary on a
# distroless runtime (glibc + libgcc, no shell, no package manager), running
# as UID 65532. The chart (charts/shopify-operator) runs it with `run`.
#
#   docker build -t shopify-operator:0.1.0 .
#
# Not built by `make test`: no container engine runs on the development
# machines or in CI here, so this file is kept simple and checked by reading
# (and hadolint). The binary needs no CA bundle (rustls with bundled webpki
# roots; the cluster CA comes from the ServiceAccount mount) and no tzdata
# (bundled by jiff).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# --locked: exactly Cargo.lock, as CI builds it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p shopify-operator --bin shopify-operator \
    && install -D -m 0755 target/release/shopify-operator /out/shopify-operator

# Debian 12 like the builder, so the glibc the binary links against is there.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/shopify-operator /shopify-operator
USER 65532:65532
# /healthz, /readyz, /metrics (HTTP_ADDR).
EXPOSE 8080
# Caps glibc's per-thread malloc arenas (most of the RSS above the heap).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["/shopify-operator"]
CMD ["run"]
