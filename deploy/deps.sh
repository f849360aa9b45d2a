#!/usr/bin/env bash
# Installs what `make test` and `make run` need and a fresh machine may lack:
# Debian packages (Kafka clients used by the tests, a JDK and Maven for the
# real Elasticsearch and Apache Kafka), Go modules, staticcheck, and the
# services' jars from Maven Central (cached in .cache/jars). Safe to run
# again: it only installs what is missing. A prerequisite that cannot be
# installed stops the build with a message saying what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

have_cmd kcat || need_pkgs+=(kcat)
have_py kafka || need_pkgs+=(python3-kafka)
have_py confluent_kafka || need_pkgs+=(python3-confluent-kafka)
# kafka-python's codecs other than gzip.
have_py snappy || need_pkgs+=(python3-snappy)
have_py lz4 || need_pkgs+=(python3-lz4)
have_py zstandard || need_pkgs+=(python3-zstandard)
have_cmd java || need_pkgs+=(openjdk-17-jdk-headless)
have_cmd mvn || need_pkgs+=(maven)
have_cmd curl || need_pkgs+=(curl)
# openssl: configs/secured/prepare.sh makes a development CA and the broker's
# certificate with it (its test runs the script as shipped).
have_cmd openssl || need_pkgs+=(openssl)
# argon2, the reference tool: brokerd's users file takes its hashes, and the
# test of that (brokerd/sasl) makes them with it.
have_cmd argon2 || need_pkgs+=(argon2)
# ip (network namespaces): the cluster's network-partition test (e2e/netns).
have_cmd ip || need_pkgs+=(iproute2)
# rsyslog with omkafka: the shipper benchmark's peer (e2e/bench/cmd/shipperbench).
dpkg-query -W -f='${Status}' rsyslog-kafka 2>/dev/null | grep -q 'ok installed' || need_pkgs+=(rsyslog rsyslog-kafka)
# A Docker engine, Compose 1.29 and debootstrap: the compose stack's
# end-to-end test (e2e/compose) runs docker-compose.yml with them and builds
# its stand-in images (a Debian base from debootstrap). The engine and
# debootstrap are looked for in /usr/sbin too, which a user's PATH may lack;
# a docker client alone is not an engine.
have_sbin() { have_cmd "$1" || [[ -x /usr/sbin/$1 || -x /usr/bin/$1 ]]; }
have_sbin dockerd || need_pkgs+=(docker.io)
have_cmd docker-compose || need_pkgs+=(docker-compose)
have_sbin debootstrap || need_pkgs+=(debootstrap)

if ((${#need_pkgs[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: missing Debian packages: ${need_pkgs[*]}" >&2
		echo "deps: run as root, or: sudo apt-get install -y ${need_pkgs[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

have_cmd go || { echo "deps: Go is not installed (need go $(sed -n 's/^go //p' go.mod))" >&2; exit 1; }
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/.*java.specification.version = //p')
if [[ -z "$java_major" || "$java_major" -lt 17 ]]; then
	echo "deps: Java 17 or newer is needed for Elasticsearch 8 and Kafka; found '${java_major:-none}'" >&2
	exit 1
fi

go mod download

# staticcheck, which `make lint` runs: a Go command, installed into
# $(go env GOPATH)/bin, where the Makefile looks for it. v0.8.2 is
# staticcheck 2026.2.2, built for Go 1.26.
staticcheck_version=v0.8.2
gobin="$(go env GOPATH)/bin"
if [[ "$("$gobin/staticcheck" -version 2>/dev/null)" != *"(${staticcheck_version#v})" ]]; then
	echo "deps: installing staticcheck $staticcheck_version"
	GOBIN="$gobin" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi

# Fetch the jars of the test services now, once, rather than from several
# test binaries at the same time.
go run ./e2e/cmd/stack fetch
