package indexer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logpipe/internal/await"
	"logpipe/internal/testcerts"
)

// What this file does not test: the indexer against a secured Elasticsearch
// (xpack.security with TLS on HTTP, basic auth, API keys). The harness's
// node is assembled from Maven Central, where Elastic publishes no x-pack
// module (org.elasticsearch.plugin:x-pack-core and x-pack-security 8.14.3
// are not there), and without it the node refuses xpack.security.* as
// unknown settings. A TLS proxy in front of the plain node would test the
// proxy, not Elasticsearch, so there is none here.

// TestESSecurityHTTPSToPlainNodeIsRefused points the indexer, with a CA in
// elasticsearch.ssl.certificate_authorities, at the real node over https://
// while the node speaks plain HTTP: the TLS connection fails, /readyz and
// the log say so, nothing reaches Elasticsearch and no offset is committed.
// With the URL fixed, a new indexer indexes every event exactly once from
// the start.
func TestESSecurityHTTPSToPlainNodeIsRefused(t *testing.T) {
	f := newFaultRun(t, startBroker(t, "brokerd"), "httpd-essec", "indexer-essec", "essec", 2)
	const n = 500
	w := newWorkload(f.topic, n, time.Date(2027, 5, 2, 0, 0, 0, 0, time.UTC))
	recs := newProducer(t, f.b, f.topic).send(w.values, func(i int) int32 { return int32(i % 2) })

	ca, err := testcerts.NewCA("essec CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	httpsURL := "https://" + strings.TrimPrefix(f.node.URL, "http://")
	ix := startIndexer(t, f.splitConfig(httpsURL, fmt.Sprintf(`elasticsearch:
  ssl.certificate_authorities: [%q]
`, caFile)))

	await.Eventually(t, "/readyz to report the TLS failure", func() error {
		err := ix.ready()
		if err == nil || !strings.Contains(err.Error(), "elasticsearch") {
			return await.NotYet(fmt.Sprintf("/readyz %v", err), "a /readyz error naming elasticsearch")
		}
		return nil
	}, ix.alive())
	// Go's TLS client on meeting the node's plain HTTP answer.
	const tlsError = "tls: first record does not look like a TLS handshake"
	await.Eventually(t, "the log to name the TLS failure", func() error {
		if tail := ix.proc.Tail(64 << 10); !strings.Contains(tail, tlsError) {
			return await.NotYet("no such line", fmt.Sprintf("a line with %q", tlsError))
		}
		return nil
	}, ix.alive())
	if got := f.es.count(f.prefix + "_*"); got != 0 {
		t.Errorf("%s_* holds %d documents through a refused TLS connection, want 0", f.prefix, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := admin(t, f.b).FetchOffsets(ctx, f.group)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if c, ok := committed.Lookup(f.topic, p); ok && c.At > 0 {
			t.Errorf("partition %d committed at %d while Elasticsearch was unreachable, want nothing committed", p, c.At)
		}
	}
	ix.stop()

	fixed := startIndexer(t, f.splitConfig(f.node.URL, ""))
	want := w.expected(f.topic, recs)
	f.waitIndexed(fixed, want)
	f.checkExact(want)
	await.Eventually(t, "readiness with the URL fixed", fixed.ready, fixed.alive())
	waitCommitted(t, f.b, f.group, f.topic)
	fixed.stop()
}
