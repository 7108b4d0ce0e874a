# syntax=docker/dockerfile:1
# scepd container image: build with cargo in the full Rust image, run from
# a slim Debian with only the shared libraries the binary links against.

FROM rust:1-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The target directory is a cache mount (kept between builds), so the
# binary is copied out of it within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin scepd \
    && install -D -m 0755 target/release/scepd /out/scepd

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 libssl3 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
# A fixed non-root uid so that volume ownership is stable across rebuilds.
RUN groupadd --system --gid 10001 scepd \
    && useradd --system --uid 10001 --gid scepd --home-dir /data --shell /usr/sbin/nologin scepd \
    && install -d -o scepd -g scepd -m 0700 /data
COPY --from=builder /out/scepd /usr/local/bin/scepd
USER scepd:scepd
VOLUME ["/data"]
# SCEP over plain HTTP on 8080; the console and API only over HTTPS on 8443
# (a plain-HTTP console on a non-loopback address is refused).
ENV SCEPD_DATA_DIR=/data \
    SCEPD_LISTEN=0.0.0.0:8080 \
    SCEPD_CONSOLE_LISTEN=0.0.0.0:8443
EXPOSE 8080 8443
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["scepd"]
CMD ["serve"]
