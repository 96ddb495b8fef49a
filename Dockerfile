# sticky-proxy container image: `docker build -t sticky-proxy .` from a clean clone.
#
# Stage 1 builds the release binary with the official Rust image; stage 2 ships
# it alone on a slim Debian of the same release (the binary links glibc only),
# as an unprivileged user. The proxy never daemonizes (`daemon on` is ignored
# with a warning), so it runs in the foreground as the container's process;
# SIGQUIT is its graceful stop (listeners close, requests in flight finish for
# up to 30 s), hence STOPSIGNAL. See docs/deploy.md.

ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate downloads and the target directory between
# builds (BuildKit, the default builder); the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin proxy \
 && install -D -m 755 target/release/proxy /out/proxy

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 sticky \
 && useradd --system --uid 10001 --gid sticky --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin sticky \
 && mkdir -p /etc/sticky-proxy /run/sticky-proxy \
 && chown sticky:sticky /run/sticky-proxy
COPY --from=build /out/proxy /usr/local/bin/proxy
COPY deploy/sticky.conf /etc/sticky-proxy/sticky.conf
USER 10001:10001
WORKDIR /etc/sticky-proxy
# 8080: the proxied traffic; 8090: the status page (probes, metrics).
EXPOSE 8080 8090
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/proxy"]
CMD ["-c", "/etc/sticky-proxy/sticky.conf"]
