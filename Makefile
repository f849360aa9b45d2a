# logpipe: the two commands are `make run` and `make test`; both install
# what they need (deploy/deps.sh) first.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X logpipe/pipeline/cli.Version=$(VERSION)
# How much `make test` fuzzes each target beyond its seed corpus: a count
# of inputs (20000x) or a duration (30s).
FUZZTIME ?= 20000x
# Packages tested at once (each test binary starts its own services). Three
# on two CPUs: the end-to-end packages spend much of their time waiting on
# services, and with two at a time `make test` used about 1.1 of the CPUs
# (19m25s of go test with 2, 16m28s with 3, on this repository's 2-CPU
# machines).
TESTP   ?= 3
# Installed by deploy/deps.sh.
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
# Commands that must not link the testing package: what `make run`, `make
# es` and `make kafka` run, and the benchmark commands built on devstack.
NOTESTING := ./e2e/cmd/stack ./e2e/bench/cmd/brokerbench ./e2e/bench/cmd/shipperbench

.PHONY: all build test run bench lint fmt deps es kafka fuzz clean

all: build

## build: the three binaries into bin/
build:
	@mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./shipper ./brokerd ./indexer

## deps: install missing Debian packages, Go modules and service jars
deps:
	./deploy/deps.sh

## test: every test (unit, integration against real services, end to end), with -race, then a short fuzz pass
test: deps lint build
	$(GO) test -race -count=1 -p $(TESTP) -timeout 45m ./...
	FUZZTIME=$(FUZZTIME) ./e2e/fuzz.sh

## run: the local pipeline (services and binaries) in the foreground; Ctrl-C stops it
run: deps build
	$(GO) run ./e2e/cmd/stack run

## bench: micro-benchmarks, brokerd against Apache Kafka, one node then three-node clusters (about 20 minutes; BENCHFLAGS=-duration=5s for a quick look), then the cost of SASL_SSL against PLAINTEXT on one node of each (about 4 minutes; TLSBENCHFLAGS="-duration 6s" for a quick look), brokerd at scale: 1,000 partitions with 100 groups, the Logstash-style Java consumer, 10,000 partitions through a kill -9 and 10,000 idle connections (about 15 minutes; SCALEBENCHFLAGS="-scale-warmup 20s -scale-duration 30s" for a quick look), the shipper against rsyslog (about 4 minutes; SHIPPERBENCHFLAGS="-lines 100000 -runs 1"), the indexer against a direct bulk load (15–25 minutes; INDEXERBENCHFLAGS="-events 50000 -warmup 10000"); the end-to-end latency of lines appended at 2,000 a second, brokerd and Kafka (about 13 minutes), then brokerd under the fault test's faults (about 6 minutes; LATENCYBENCHFLAGS="-duration 1m" for a quick look); figures go to docs/benchmarks.md
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./e2e/bench/cmd/brokerbench $(BENCHFLAGS)
	$(GO) run ./e2e/bench/cmd/brokerbench -parts tls -duration 20s $(TLSBENCHFLAGS)
	$(GO) run ./e2e/bench/cmd/brokerbench -parts scale,logstash,tenk,conns $(SCALEBENCHFLAGS)
	$(GO) run ./e2e/bench/cmd/shipperbench $(SHIPPERBENCHFLAGS)
	$(GO) run ./e2e/bench/cmd/indexerbench $(INDEXERBENCHFLAGS)
	$(GO) run ./e2e/bench/cmd/latencybench -mode steady -doc docs/benchmarks.md $(LATENCYBENCHFLAGS)
	$(GO) run ./e2e/bench/cmd/latencybench -mode steady -faults -broker brokerd -indexer-set 'kafka.version=2.3.0 kafka.group_instance_id=latencybench-indexer' -doc docs/benchmarks.md $(LATENCYBENCHFLAGS)

## es: a real Elasticsearch 8 node in the foreground
es: deps
	$(GO) run ./e2e/cmd/stack es

## kafka: a real Apache Kafka (KRaft) in the foreground; NODES=3 for three
kafka: deps
	$(GO) run ./e2e/cmd/stack kafka -nodes $(or $(NODES),1)

## fuzz: run every fuzz target for FUZZTIME
fuzz:
	FUZZTIME=$(FUZZTIME) ./e2e/fuzz.sh

## lint: gofmt must list nothing, go.mod and go.sum must be tidy, go vet and staticcheck must pass, and the commands in NOTESTING must not link the testing package
lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	@test -x "$(STATICCHECK)" || { echo "lint: no staticcheck at $(STATICCHECK); run make deps"; exit 1; }
	$(STATICCHECK) ./...
	@for c in $(NOTESTING); do \
		deps=$$($(GO) list -deps $$c) || exit 1; \
		if echo "$$deps" | grep -qx testing; then echo "lint: $$c links the testing package"; exit 1; fi; \
	done

## fmt: gofmt every Go file
fmt:
	gofmt -w $$(find . -name '*.go' -not -path './.cache/*')

clean:
	rm -rf bin .cache/run
