# The image of logpipe's three binaries: shipper, brokerd and indexer, in
# /usr/local/bin, run as the unprivileged user "logpipe". The image has no
# entry point of its own: a container names the binary as its command
# (docker run IMAGE brokerd -c ...), as docker-compose.yml does.
#
#   docker build -t logpipe .
#
# Build arguments:
#   GO_IMAGE, DEBIAN_IMAGE  the builder and the base of the final image;
#                           the defaults are the official images
#   GOPROXY, GOSUMDB        passed to the Go module download when set (a
#                           corporate proxy, for example); unset means Go's
#                           defaults
#   VERSION                 what --version prints

ARG GO_IMAGE=golang:1.26-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
ARG GOPROXY
ARG GOSUMDB
WORKDIR /src
# Modules first, in their own layer, so that a change to the sources does
# not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The build cache is dropped in the same step: the stage is thrown away,
# and the layer it would leave behind on every rebuild is large.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X logpipe/pipeline/cli.Version=${VERSION}" \
        -o /out/ ./shipper ./brokerd ./indexer \
 && go clean -cache

FROM ${DEBIAN_IMAGE}
# curl for the health checks (GET /readyz); CA certificates for TLS to
# Kafka, Elasticsearch and Kibana.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# One unprivileged user for the three binaries. /var/lib/logpipe is where
# their data goes (brokerd's log.dirs, the shipper's path.data); a volume
# mounted there starts owned by this user.
RUN groupadd --system --gid 10001 logpipe \
 && useradd --system --uid 10001 --gid logpipe --home-dir /var/lib/logpipe --shell /usr/sbin/nologin logpipe \
 && install -d -o logpipe -g logpipe /var/lib/logpipe
COPY --from=build /out/ /usr/local/bin/
COPY configs/ /etc/logpipe/
USER logpipe
WORKDIR /var/lib/logpipe
CMD ["brokerd", "--help"]
