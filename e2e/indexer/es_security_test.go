package indexer_test

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/internal/await"
	"logpipe/internal/devstack"
	"logpipe/internal/testcerts"
)

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

	_, caFile := newCAFile(t, "essec CA")
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
	noCommits(t, f)
	ix.stop()

	f.indexedOnce(startIndexer(t, f.splitConfig(f.node.URL, "")), w, recs)
}

// securedES is an Elasticsearch node with X-Pack security (HTTPS with a
// certificate from ca, every request authenticated) and a superuser client.
type securedES struct {
	node   *devstack.Elasticsearch
	su     *esClient
	caFile string // ca's certificate, for the indexer's certificate_authorities
}

// startSecuredES starts a node with security and a CA of its own, stopped
// when t ends.
func startSecuredES(t *testing.T) *securedES {
	t.Helper()
	ca, caFile := newCAFile(t, "logpipe test Elasticsearch CA")
	leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "logpipe-es"}, Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	node, err := devstack.StartElasticsearch(ctx, devstack.ElasticsearchOptions{
		ClusterName: "logpipe-secured",
		Security: &devstack.ElasticsearchSecurity{
			CertPEM: leaf.CertPEM, KeyPEM: leaf.KeyPEM, CAPEM: ca.PEM,
			Username: "logpipe_admin", Password: "admin-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the end of the secured node's log:\n%s", node.LogTail(8000))
		}
		node.Close()
	})
	return &securedES{node: node, su: newES(t, node), caFile: caFile}
}

// must sends a request as the superuser and fails t unless it succeeds.
func (s *securedES) must(t *testing.T, method, path, body string, out any) {
	t.Helper()
	if code := s.su.do(method, path, body, out); code/100 != 2 {
		t.Fatalf("%s %s as the superuser: status %d", method, path, code)
	}
}

// run is a faultRun against the secured node.
func (s *securedES) run(t *testing.T, b broker, name string) *faultRun {
	f := &faultRun{t: t, node: s.node, es: newES(t, s.node), b: b, topic: "httpd-" + name, group: "indexer-" + name, prefix: name}
	createTopic(t, b, f.topic, 2)
	return f
}

// indexerRole is the indexer's least privilege on the secured node: GET /
// (monitor), its index templates, and creating its indices and documents
// (the routes' and the default dead-letter index).
const indexerRole = `{
  "cluster": ["monitor", "manage_index_templates"],
  "indices": [{"names": ["essec*", "logpipe-dlq-*"], "privileges": ["create_doc", "create_index", "view_index_metadata"]}]
}`

// TestESSecurity runs the indexer against an Elasticsearch node with X-Pack
// security: HTTPS whose certificate the indexer checks against a CA, and a
// user or API key holding only what the indexer needs (installing its
// index templates, creating its indices and documents). Every event is
// indexed exactly once and committed; a wrong password and a CA that did
// not issue the node's certificate leave the indexer not ready, saying why,
// with nothing indexed and nothing committed, and an indexer with the
// right credentials (the same indexer once its password is set in
// Elasticsearch, or a new one with the right CA) then indexes every event
// exactly once from the start;
// an API key without the cluster privilege "monitor" leaves it not ready,
// naming the privilege.
func TestESSecurity(t *testing.T) {
	s := startSecuredES(t)
	b := startBroker(t, "brokerd")
	// The indexer's least privilege. The dead-letter index is the default one.
	s.must(t, http.MethodPut, "/_security/role/logpipe_indexer", indexerRole, nil)
	s.must(t, http.MethodPut, "/_security/user/indexer", `{"password": "indexer-secret", "roles": ["logpipe_indexer"]}`, nil)

	const n = 400
	day := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	ca := "  ssl.certificate_authorities: [" + strconv.Quote(s.caFile) + "]\n"
	// index runs an indexer with the credentials in auth over HTTPS with
	// the node's CA and checks the exactly-once result.
	index := func(t *testing.T, name, auth string) {
		f := s.run(t, b, name)
		w := newWorkload(f.topic, n, day)
		recs := newProducer(t, f.b, f.topic).send(w.values, func(i int) int32 { return int32(i % 2) })
		f.indexedOnce(startIndexer(t, f.splitConfig(s.node.URL, "elasticsearch:\n"+auth+ca)), w, recs)
	}

	t.Run("BasicAuth", func(t *testing.T) {
		index(t, "essec-basic", "  username: indexer\n  password: indexer-secret\n")
	})

	t.Run("APIKey", func(t *testing.T) {
		// The key is made by the superuser with the indexer's privileges, as
		// an operator would; it is given in Filebeat's id:api_key form.
		var key struct {
			ID     string `json:"id"`
			APIKey string `json:"api_key"`
		}
		s.must(t, http.MethodPost, "/_security/api_key", `{"name": "logpipe-indexer", "role_descriptors": {"logpipe_indexer": `+indexerRole+`}}`, &key)
		index(t, "essec-apikey", fmt.Sprintf("  api_key: %q\n", key.ID+":"+key.APIKey))
	})

	t.Run("WrongPassword", func(t *testing.T) {
		// A user of its own, whose password is then set in Elasticsearch to
		// the one the running indexer has: it goes on without a restart.
		s.must(t, http.MethodPut, "/_security/user/indexer_pw", `{"password": "the-first-password", "roles": ["logpipe_indexer"]}`, nil)
		refused(t, s, b, "essec-wrongpw", "  username: indexer_pw\n  password: not-the-password\n"+ca,
			"Elasticsearch refused the credentials", "unable to authenticate user [indexer_pw]",
			func(_ *faultRun, ix *indexer) *indexer {
				s.must(t, http.MethodPost, "/_security/user/indexer_pw/_password", `{"password": "not-the-password"}`, nil)
				return ix
			})
	})

	t.Run("WrongCA", func(t *testing.T) {
		_, otherFile := newCAFile(t, "not the node's CA")
		const unknownCA = "x509: certificate signed by unknown authority"
		refused(t, s, b, "essec-wrongca", "  username: indexer\n  password: indexer-secret\n  ssl.certificate_authorities: ["+strconv.Quote(otherFile)+"]\n",
			unknownCA, unknownCA, func(f *faultRun, ix *indexer) *indexer {
				ix.stop()
				return startIndexer(t, f.splitConfig(s.node.URL, "elasticsearch:\n  username: indexer\n  password: indexer-secret\n"+ca))
			})
	})

	t.Run("NoMonitorPrivilege", func(t *testing.T) {
		// A key that may write but not GET /: the indexer is not ready and
		// names the missing privilege.
		var key struct {
			Encoded string `json:"encoded"`
		}
		s.must(t, http.MethodPost, "/_security/api_key", `{"name": "no-monitor", "role_descriptors": {"w": {
  "cluster": ["manage_index_templates"],
  "indices": [{"names": ["essec*"], "privileges": ["create_doc", "create_index"]}]}}}`, &key)
		f := s.run(t, b, "essec-nomonitor")
		ix := startIndexer(t, f.splitConfig(s.node.URL, fmt.Sprintf("elasticsearch:\n  api_key: %q\n%s", key.Encoded, ca)))
		await.Eventually(t, "/readyz to name the missing privilege", func() error {
			if err := ix.ready(); err == nil || !strings.Contains(err.Error(), `privilege "monitor"`) {
				return await.NotYet(fmt.Sprintf("/readyz %v", err), `an error naming the privilege "monitor"`)
			}
			return nil
		}, ix.alive())
		ix.stop()
	})
}

// refused runs an indexer whose elasticsearch settings (bad) the node
// refuses: /readyz says so (its answer holds ready), the log has why (a
// line holding logged), nothing is indexed or committed. Then fix puts it
// right, on either side, and returns the indexer that must then index
// every event exactly once (the same one, or a new one).
func refused(t *testing.T, s *securedES, b broker, name, bad, ready, logged string, fix func(*faultRun, *indexer) *indexer) {
	f := s.run(t, b, name)
	w := newWorkload(f.topic, 300, time.Date(2027, 6, 2, 0, 0, 0, 0, time.UTC))
	recs := newProducer(t, f.b, f.topic).send(w.values, func(i int) int32 { return int32(i % 2) })
	ix := startIndexer(t, f.splitConfig(s.node.URL, "elasticsearch:\n"+bad))
	await.Eventually(t, "/readyz to report the refusal", func() error {
		err := ix.ready()
		if err == nil || !strings.Contains(err.Error(), ready) {
			return await.NotYet(fmt.Sprintf("/readyz %v", err), fmt.Sprintf("a /readyz error with %q", ready))
		}
		return nil
	}, ix.alive())
	await.Eventually(t, "the log to say why", func() error {
		if tail := ix.proc.Tail(64 << 10); !strings.Contains(tail, logged) {
			return await.NotYet("no such line", fmt.Sprintf("a line with %q", logged))
		}
		return nil
	}, ix.alive())
	if got := f.es.count(f.prefix + "_*"); got > 0 {
		t.Errorf("%s_* holds %d documents from a refused indexer, want none", f.prefix, got)
	}
	noCommits(t, f)
	f.indexedOnce(fix(f, ix), w, recs)
}

// indexedOnce waits while ix runs until the run's indices hold every event
// of w (produced as recs) once, ix is ready and every partition committed
// to its end; then it stops ix.
func (f *faultRun) indexedOnce(ix *indexer, w *workload, recs []*kgo.Record) {
	f.t.Helper()
	want := w.expected(f.topic, recs)
	f.waitIndexed(ix, want)
	f.checkExact(want)
	await.Eventually(f.t, "readiness", ix.ready, ix.alive())
	waitCommitted(f.t, f.b, f.group, f.topic)
	ix.stop()
}

// noCommits fails t if the run's group committed an offset.
func noCommits(t *testing.T, f *faultRun) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := admin(t, f.b).FetchOffsets(ctx, f.group)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if c, ok := committed.Lookup(f.topic, p); ok && c.At > 0 {
			t.Errorf("partition %d committed at %d while Elasticsearch refused the indexer, want nothing committed", p, c.At)
		}
	}
}

// newCAFile makes a CA named name and writes its certificate to a file of
// t's own.
func newCAFile(t *testing.T, name string) (*testcerts.CA, string) {
	t.Helper()
	ca, err := testcerts.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(file, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca, file
}
