# syntax=docker/dockerfile:1
#
# mediagate container image: one node, one binary.
#
#   docker build -t mediagate .
#   docker run --network host -v mediagate-data:/var/lib/mediagate mediagate
#
# --network host is the simple way for a media server: SIP and RTP carry
# addresses inside their messages, and publishing 10001 RTP ports through
# Docker's proxy is slow. Without it, publish every port below (the RTP
# range with -p 10000-20000:10000-20000/udp) and set sip.external_address
# and webrtc.public_ips to the host's public address (docs/operations.md).
# docker stop waits 10 s by default before SIGKILL; a node drains for
# node.drain_timeout (30 s): stop it with `docker stop -t 40` (or
# stop_grace_period: 40s in compose) so calls in progress can end.

# --- build: Go with the C codec libraries the cgo packages link against
# (scripts/bootstrap --run installs the same set on a build machine).
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      pkg-config libopus-dev libopusfile-dev libvo-aacenc-dev libspeexdsp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-X main.version=${VERSION}" \
      -o /out/mediagate ./cmd/mediagate

# --- runtime: Debian slim with the codec libraries' runtime packages only
FROM debian:bookworm-slim
# libopus0, libopusfile0: Opus; libvo-aacenc0: AAC for streams and m4a
# recordings; libspeexdsp1: resampler; ca-certificates: the system roots
# for rtmps:// ingests and Redis over TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libopus0 libopusfile0 libvo-aacenc0 libspeexdsp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/mediagate \
      --shell /usr/sbin/nologin mediagate \
 && install -d -o mediagate -g mediagate -m 0750 /var/lib/mediagate
COPY --from=build /out/mediagate /usr/local/bin/mediagate

# storage.dir: recordings, manifests, deletion receipts and their key,
# API keys (hashes), the audit log, the node id. Keep it on a volume and
# back it up (docs/operations.md).
ENV MEDIAGATE_STORAGE_DIR=/var/lib/mediagate
VOLUME ["/var/lib/mediagate"]
WORKDIR /var/lib/mediagate
USER mediagate

# HTTP (http.listen): join pages, WHIP/WHEP, admin page and API, /metrics,
# /healthz, /readyz.
EXPOSE 8080/tcp
# SIP (sip.listen), UDP and TCP.
EXPOSE 5060/udp 5060/tcp
# SIP over TLS (sip.tls.listen), when sip.tls.cert and sip.tls.key are set.
EXPOSE 5061/tcp
# WebRTC media of every browser, one UDP port (webrtc.udp_port).
EXPOSE 7882/udp
# RTP/RTCP of phone calls (rtp.port_min..rtp.port_max): publish the whole
# range, -p 10000-20000:10000-20000/udp, or use --network host.
EXPOSE 10000-20000/udp

# Alive as long as /healthz answers 200 on the default plain-HTTP port
# (bash's /dev/tcp: the image has no curl). With HTTPS or another
# http.listen, override it (docker run --health-cmd ...) or rely on the
# orchestrator's own probe of /healthz and /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# SIGTERM drains (readiness 503, new calls refused, open ones get
# node.drain_timeout to end); SIGHUP reloads the configuration.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mediagate", "serve"]
