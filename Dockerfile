# syntax=docker/dockerfile:1
# Multi-stage build of the one `causeway` binary (controller, agent, crds, plan, version).
# Stage 1 builds a static musl binary; stage 2 is distroless/static, non-root by default.
# The agent DaemonSet overrides the user to root (iptables needs it) and adds only NET_ADMIN;
# it shells out to iptables, so its image is the `agent` target below
# (`docker build --target agent -t <repo>-agent .`; the chart defaults to `<image.repository>-agent`).

ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# ring (the one crypto stack) builds with musl-gcc; no OpenSSL or aws-lc is involved.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin causeway \
 && install -D target/x86_64-unknown-linux-musl/release/causeway /out/causeway

# Controller image: static binary, no shell, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot AS controller
COPY --from=build /out/causeway /usr/local/bin/causeway
USER 65532:65532
EXPOSE 8080 9443
ENTRYPOINT ["/usr/local/bin/causeway"]
CMD ["controller"]

# Agent image: needs the iptables binaries (nft backend, as on current EKS AMIs).
FROM docker.io/library/debian:bookworm-slim AS agent
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/causeway /usr/local/bin/causeway
ENTRYPOINT ["/usr/local/bin/causeway"]
CMD ["agent"]

# Default target: the controller.
FROM controller
