#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each: a duration
# (10s) or, the default, a count of inputs (20000x). Counts keep CI's run
# independent of the machine's load; a time limit can also end a run in
# the middle of minimising a new input, which go test then reports as a
# failure ("context deadline exceeded").
# Seed corpora live in each package's testdata/fuzz/ and run as ordinary
# tests in `go test`; this adds a short run of new inputs. A crasher is
# written to testdata/fuzz/<Target>/ by go test; commit it with the fix.
# KEEP=1 also copies the inputs the fuzzer found interesting (kept by go in
# its cache) into testdata/fuzz/<Target>/, so the corpus lives in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20000x}
status=0
while IFS=: read -r file _ match; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$match")
	pkg=$(dirname "$file")
	echo "fuzz: $pkg $name ($fuzztime)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/logpipe-fuzz.$$ 2>&1; then
		cat /tmp/logpipe-fuzz.$$
		status=1
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		cache="$(go env GOCACHE)/fuzz/logpipe/${pkg#./}/$name"
		if [[ -d $cache ]]; then
			mkdir -p "$pkg/testdata/fuzz/$name"
			cp -n "$cache"/* "$pkg/testdata/fuzz/$name/" 2>/dev/null || true
		fi
	fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '/.cache/' | sort)
rm -f /tmp/logpipe-fuzz.$$
exit $status
