package pipeline_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
	"logpipe/internal/testcerts"
)

// securedRun is the secured pipeline of one test: brokerd, the shipper and
// the indexer from configs/secured, with only addresses, folders and the
// HTTP servers changed.
type securedRun struct {
	t       *testing.T
	dir     string
	shipped string // configs/secured
	sec     string // LOGPIPE_SECURITY_DIR
	logs    string // what the shipper tails
	addr    string // brokerd's SASL_SSL listener
	ca      *testcerts.CA
	// The passwords of the four accounts, made up for the run.
	admin, broker, shipper, indexer string
}

func password() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// env is the environment of the programs and scripts: the security
// folder and the passwords, as a deployment sets them.
func (r *securedRun) env(shipperPassword string) []string {
	return append(os.Environ(),
		"LOGPIPE_SECURITY_DIR="+r.sec,
		"LOGPIPE_ADMIN_PASSWORD="+r.admin,
		"LOGPIPE_BROKER_PASSWORD="+r.broker,
		"LOGPIPE_SHIPPER_PASSWORD="+shipperPassword,
		"LOGPIPE_INDEXER_PASSWORD="+r.indexer,
		"BROKERD="+filepath.Join(binDir, "brokerd"),
		"BOOTSTRAP_SERVER="+r.addr,
	)
}

// script runs one of configs/secured's scripts and returns its output.
func (r *securedRun) script(name string, args ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{filepath.Join(r.shipped, name)}, args...)...)
	cmd.Env = r.env(r.shipper)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// start starts a program with a config of configs/secured and -E
// overrides, its HTTP server on web, and stops it when the test ends.
func (r *securedRun) start(name, config, web string, env []string, settings ...string) *devstack.Process {
	r.t.Helper()
	host, port, _ := strings.Cut(web, ":")
	args := []string{"-c", config, "-E", "http.enabled=true", "-E", "http.host=" + host, "-E", "http.port=" + port}
	for _, s := range settings {
		args = append(args, "-E", s)
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = env
	p, err := devstack.StartProcess(name, cmd, filepath.Join(r.dir, name+".log"))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		p.Stop(time.Minute)
		if r.t.Failed() {
			r.t.Logf("the end of %s:\n%s", p.LogPath, p.Tail(4000))
		}
	})
	return p
}

// readyz returns the status and body of a program's /readyz.
func readyz(web string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + web + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8192))
	return res.StatusCode, strings.TrimSpace(string(b)), err
}

// awaitReady waits for a program's /readyz to answer 200.
func awaitReady(t *testing.T, p *devstack.Process, web string) {
	t.Helper()
	await.Eventually(t, p.Name+"'s /readyz to answer 200", func() error {
		code, body, err := readyz(web)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return await.NotYet(fmt.Sprintf("%d %s", code, body), "200 ready")
		}
		return nil
	}, settle, await.While(p.Alive))
}

// client is a franz-go client logged in as user over TLS.
func (r *securedRun) client(user, pass string, opts ...kgo.Opt) *kgo.Client {
	r.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.addr),
		kgo.DialTLSConfig(&tls.Config{RootCAs: r.ca.Pool(), MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())}, opts...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(cl.Close)
	return cl
}

// securedMarker finds a line's number in a document's original text.
var securedMarker = regexp.MustCompile(`sec(\d{6})`)

// TestSecuredPipeline runs the pipeline as configs/secured ships it:
// brokerd on SASL_SSL with ACLs (certificates from the test's own CA, the
// PLAIN accounts from prepare.sh), the topic, users and ACLs from
// bootstrap.sh, Kafka's own kafka-acls tool reading the admin's properties
// file (all over TLS 1.3, the only version the shipped settings take),
// then the shipper and the indexer as SCRAM users: every line
// appended arrives in Elasticsearch exactly once. The shipper restarted
// with a wrong password is not ready and says why, and once restarted with
// the right one every line it had read arrives exactly once. The users'
// rights are the least the pipeline needs: the shipper cannot read the
// topic, the indexer cannot write it.
func TestSecuredPipeline(t *testing.T) {
	node := harness.SharedElasticsearch(t)
	es := newSearch(t, node.URL)
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &securedRun{t: t, dir: dir, shipped: filepath.Join(root, "configs", "secured"), sec: filepath.Join(dir, "security"), logs: filepath.Join(dir, "logs"),
		admin: password(), broker: password(), shipper: password(), indexer: password()}
	for _, d := range []string{r.sec, r.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ports := make([]int, 4) // brokerd, and the HTTP servers of brokerd, the shipper, the indexer
	for i := range ports {
		if ports[i], err = devstack.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	r.addr = "127.0.0.1:" + strconv.Itoa(ports[0])
	brokerWeb, shipperWeb, indexerWeb := "127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[2]), "127.0.0.1:"+strconv.Itoa(ports[3])

	// The user's certificates: a CA and brokerd's certificate, which
	// prepare.sh keeps; it writes the PLAIN accounts.
	if r.ca, err = testcerts.NewCA("secured pipeline CA"); err != nil {
		t.Fatal(err)
	}
	leaf, err := r.ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "brokerd"}, Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := leaf.Write(r.sec, "brokerd"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.sec, "ca.crt"), r.ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := r.script("prepare.sh"); strings.Contains(out, "made") {
		t.Fatalf("prepare.sh made certificates although brokerd.crt was there:\n%s", out)
	}

	brokerd := r.start("brokerd", filepath.Join(r.shipped, "brokerd.yml"), brokerWeb, r.env(r.shipper),
		"listeners=SASL_SSL://"+r.addr, "log.dirs="+filepath.Join(dir, "data"), "group.initial.rebalance.delay.ms=0")
	awaitReady(t, brokerd, brokerWeb)
	// The shipped settings take TLS 1.3 only.
	if c, err := tls.Dial("tcp", r.addr, &tls.Config{RootCAs: r.ca.Pool(), MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Error("the secured broker accepted a TLS 1.2 client")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("a TLS 1.2 client: got %v, want a protocol version alert", err)
	}
	t.Logf("bootstrap.sh:\n%s", r.script("bootstrap.sh"))

	// The admin's properties file, as bootstrap.sh writes it, works with
	// Kafka's own kafka-acls and with brokerd acls alike, and both list
	// the pipeline's ACLs.
	adminProps := filepath.Join(dir, "admin.properties")
	props := "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n" +
		`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="` + r.admin + "\";\n" +
		"ssl.truststore.type=PEM\nssl.truststore.location=" + filepath.Join(r.sec, "ca.crt") + "\n"
	if err := os.WriteFile(adminProps, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	java, err := devstack.KafkaToolCommand(ctx, "kafka.admin.AclCommand", "--bootstrap-server", r.addr, "--command-config", adminProps, "--list", "--topic", "httpd")
	if err != nil {
		t.Fatal(err)
	}
	javaOut, err := java.CombinedOutput()
	if err != nil {
		t.Fatalf("kafka-acls --command-config: %v\n%s", err, javaOut)
	}
	ours, err := exec.CommandContext(ctx, filepath.Join(binDir, "brokerd"), "acls", "--bootstrap-server", r.addr, "--command-config", adminProps, "--list", "--topic", "httpd").CombinedOutput()
	if err != nil {
		t.Fatalf("brokerd acls --command-config: %v\n%s", err, ours)
	}
	for _, want := range []string{"principal=User:shipper, host=*, operation=WRITE, permissionType=ALLOW", "principal=User:indexer, host=*, operation=READ, permissionType=ALLOW"} {
		for tool, out := range map[string][]byte{"kafka-acls": javaOut, "brokerd acls": ours} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("%s --list --topic httpd: got\n%s\nwant a line with %q", tool, out, want)
			}
		}
	}

	// The shipped shipper.yml with its logs folder moved here.
	shipperConf := filepath.Join(dir, "shipper.yml")
	shipped, err := os.ReadFile(filepath.Join(r.shipped, "shipper.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(shipped, []byte("/var/log/httpd/")) {
		t.Fatalf("configs/secured/shipper.yml reads nothing under /var/log/httpd/")
	}
	if err := os.WriteFile(shipperConf, bytes.ReplaceAll(shipped, []byte("/var/log/httpd/"), []byte(r.logs+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	startShipper := func(pass string) *devstack.Process {
		env := r.env(pass)
		return r.start("shipper", shipperConf, shipperWeb, env, "output.kafka.hosts=["+strconv.Quote(r.addr)+"]", "path.data="+filepath.Join(dir, "shipper"))
	}
	indexer := r.start("indexer", filepath.Join(r.shipped, "indexer.yml"), indexerWeb, r.env(r.shipper),
		"kafka.hosts=["+strconv.Quote(r.addr)+"]", "elasticsearch.hosts=["+strconv.Quote(node.URL)+"]", "kafka.auto_offset_reset=earliest")
	shipper := startShipper(r.shipper)
	awaitReady(t, indexer, indexerWeb)
	awaitReady(t, shipper, shipperWeb)

	// Lines, numbered by a marker; one in four goes to error_log.
	g := devstack.NewHTTPDLog(7)
	written := 0
	appendLines := func(n int) {
		t.Helper()
		var access, errorLog bytes.Buffer
		for range n {
			m := fmt.Sprintf("sec%06d", written)
			if written%4 == 3 {
				errorLog.WriteString(g.Error(time.Now(), m) + "\n")
			} else {
				access.WriteString(g.Access(time.Now(), m) + "\n")
			}
			written++
		}
		for name, b := range map[string][]byte{"access_log": access.Bytes(), "error_log": errorLog.Bytes()} {
			f, err := os.OpenFile(filepath.Join(r.logs, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := f.Write(b)
			if err := errors.Join(werr, f.Close()); err != nil {
				t.Fatal(err)
			}
		}
	}
	ourDocs := map[string]any{"prefix": map[string]any{"log.file.path": r.logs + "/"}}
	// exactlyOnce waits until every line written is one document.
	exactlyOnce := func(what string, alive func() error) {
		t.Helper()
		await.Eventually(t, what, func() error {
			n, err := es.count("httpd_*", ourDocs)
			switch {
			case err != nil:
				return err
			case n > written:
				return await.Stop(fmt.Errorf("%d documents for %d lines", n, written))
			case n < written:
				return await.NotYet(n, written)
			}
			return nil
		}, settle, await.While(alive))
		seen := make([]int, written)
		for _, d := range es.all("httpd_*", ourDocs, "event.original") {
			m := securedMarker.FindStringSubmatch(fmt.Sprint(harness.Field(d.Source, "event.original")))
			if m == nil {
				t.Fatalf("document %s in %s has no marker: %v", d.ID, d.Index, d.Source)
			}
			i, _ := strconv.Atoi(m[1])
			if i >= written {
				t.Fatalf("document %s holds line %d; only %d were written", d.ID, i, written)
			}
			seen[i]++
		}
		for i, n := range seen {
			if n != 1 {
				t.Errorf("line %d: got %d documents, want 1", i, n)
			}
		}
	}
	appendLines(200)
	exactlyOnce("the 200 lines to be indexed", func() error { return errors.Join(brokerd.Alive(), shipper.Alive(), indexer.Alive()) })

	// A wrong password: not ready, saying why; what it reads waits.
	shipper.Stop(time.Minute)
	wrong := startShipper("not-" + r.shipper)
	appendLines(100)
	await.Eventually(t, "the shipper with a wrong password to say in /readyz that its login was refused", func() error {
		code, body, err := readyz(shipperWeb)
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "SASL Authentication failed") {
			return await.NotYet(fmt.Sprintf("%d %q", code, body), "503 naming SASL Authentication failed")
		}
		t.Logf("the shipper with a wrong password: /readyz %d %s", code, body)
		return nil
	}, settle, await.While(wrong.Alive))
	if n, err := es.count("httpd_*", ourDocs); err != nil || n != 200 {
		t.Fatalf("with the shipper refused: got %d documents (%v), want the 200 of before", n, err)
	}
	wrong.Stop(time.Minute)
	shipper = startShipper(r.shipper)
	exactlyOnce("the 300 lines to be indexed after the shipper's restart with the right password", func() error { return errors.Join(brokerd.Alive(), shipper.Alive(), indexer.Alive()) })

	// Least privilege: the shipper's account cannot read the topic, the
	// indexer's cannot write it.
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reader := r.client("shipper", r.shipper, kgo.ConsumeTopics("httpd"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	await.Eventually(t, "a consumer logged in as shipper to be refused the topic", func() error {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		fs := reader.PollFetches(pctx)
		if fs.NumRecords() > 0 {
			return await.Stop(fmt.Errorf("the shipper's account read %d records of httpd", fs.NumRecords()))
		}
		var got []string
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, kerr.TopicAuthorizationFailed) {
				return nil
			}
			got = append(got, fe.Err.Error())
		}
		return await.NotYet(got, kerr.TopicAuthorizationFailed)
	}, settle)
	writer := r.client("indexer", r.indexer, kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	if err := writer.ProduceSync(ctx, &kgo.Record{Topic: "httpd", Value: []byte("not the indexer's to write")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("a produce as indexer to httpd: got %v, want %v", err, kerr.TopicAuthorizationFailed)
	}
}

// TestSecuredPrepareMakesCertificates runs prepare.sh as the compose
// override does, on empty folders: openssl makes a development CA, whose
// key stays in its own folder, and a brokerd certificate valid for the
// hosts named; brokerd's folder gets the PLAIN accounts' bcrypt hashes and
// the clients' folder the CA certificate alone. A second run keeps the
// certificates and writes the accounts again.
func TestSecuredPrepareMakesCertificates(t *testing.T) {
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caDir, brokerdDir, clientsDir := filepath.Join(dir, "ca"), filepath.Join(dir, "brokerd"), filepath.Join(dir, "clients")
	prepare := func(adminPassword string) string {
		cmd := exec.Command("sh", filepath.Join(root, "configs", "secured", "prepare.sh"))
		cmd.Env = append(os.Environ(), "CA_DIR="+caDir, "BROKERD_DIR="+brokerdDir, "CLIENTS_DIR="+clientsDir,
			"BROKERD_HOSTS=brokerd-1 brokerd-2 127.0.0.1", "LOGPIPE_ADMIN_PASSWORD="+adminPassword,
			"LOGPIPE_BROKER_PASSWORD=broker-pw", "BROKERD="+filepath.Join(binDir, "brokerd"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("prepare.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	prepare("admin-pw")
	for d, want := range map[string][]string{
		caDir:      {"ca.crt", "ca.key"},
		brokerdDir: {"brokerd.crt", "brokerd.key", "ca.crt", "plain-users.yml"},
		clientsDir: {"ca.crt"},
	} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", d, got, want)
		}
	}
	caPEM, err := os.ReadFile(filepath.Join(clientsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("clients' ca.crt holds no certificate:\n%s", caPEM)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(brokerdDir, "brokerd.crt"), filepath.Join(brokerdDir, "brokerd.key"))
	if err != nil {
		t.Fatalf("brokerd.crt and brokerd.key: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"brokerd-1", "brokerd-2", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("brokerd.crt for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "brokerd-3"}); err == nil {
		t.Errorf("brokerd.crt is valid for brokerd-3, which BROKERD_HOSTS did not name")
	}

	// Again, with another admin password: the same certificate, new hashes.
	if out := prepare("admin-pw-2"); strings.Contains(out, "made") {
		t.Errorf("the second run made certificates again:\n%s", out)
	}
	again, err := tls.LoadX509KeyPair(filepath.Join(brokerdDir, "brokerd.crt"), filepath.Join(brokerdDir, "brokerd.key"))
	if err != nil || !bytes.Equal(again.Certificate[0], pair.Certificate[0]) {
		t.Errorf("the second run changed brokerd.crt (%v)", err)
	}
	users, err := os.ReadFile(filepath.Join(brokerdDir, "plain-users.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var hashes map[string]string
	if err := yaml.Unmarshal(users, &hashes); err != nil {
		t.Fatalf("plain-users.yml: %v\n%s", err, users)
	}
	for user, pass := range map[string]string{"admin": "admin-pw-2", "broker": "broker-pw"} {
		if err := bcrypt.CompareHashAndPassword([]byte(hashes[user]), []byte(pass)); err != nil {
			t.Errorf("plain-users.yml: the hash of %s does not match its password: %v", user, err)
		}
	}
}
