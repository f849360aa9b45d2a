package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/internal/testcerts"
)

// whoami answers Metadata with the connection's principal, listener and
// TLS state in the cluster id.
type whoami struct{}

func (whoami) Versions(key int16) (int16, int16, bool) { return 0, 12, key == 3 || key == 18 }

func (whoami) Handle(_ context.Context, c *Conn, _ Header, req kmsg.Request) (kmsg.Response, error) {
	resp := req.ResponseKind()
	if m, ok := resp.(*kmsg.MetadataResponse); ok {
		id := c.Principal() + " " + c.Listener()
		if c.TLS() {
			id += " tls"
		}
		m.ClusterID = &id
	}
	return resp, nil
}

// TestCertificatePrincipal serves a TLS listener that asks for client
// certificates and checks the principal handlers see: the mapped subject
// for a client with a certificate, Anonymous for one without.
func TestCertificatePrincipal(t *testing.T) {
	ca, err := testcerts.NewCA("wire test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvLeaf, _ := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "srv"}, Hosts: []string{"127.0.0.1"}})
	cliLeaf, _ := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "alice", Organization: []string{"logpipe"}}})
	srvCert, _ := srvLeaf.TLS()
	cliCert, _ := cliLeaf.TLS()
	s := &Server{Handler: whoami{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sec := Security{
		Listener:      "SECURE",
		TLS:           &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12},
		CertPrincipal: func(c *x509.Certificate) (string, error) { return "User:" + c.Subject.String(), nil },
	}
	go s.ServeSecured(ln, sec)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	ask := func(certs ...tls.Certificate) string {
		t.Helper()
		c, err := DialSecured(ln.Addr().String(), "t", 10*time.Second, ClientSecurity{TLS: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(2)
		resp, err := c.Request(req, time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return *resp.(*kmsg.MetadataResponse).ClusterID
	}
	if got, want := ask(cliCert), "User:CN=alice,O=logpipe SECURE tls"; got != want {
		t.Errorf("with a certificate: got %q, want %q", got, want)
	}
	if got, want := ask(), Anonymous+" SECURE tls"; got != want {
		t.Errorf("without a certificate: got %q, want %q", got, want)
	}
}
