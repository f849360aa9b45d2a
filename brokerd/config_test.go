package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logpipe/pipeline/config"
)

// TestExampleConfigLoads keeps configs/brokerd.yml in step with the config type.
func TestExampleConfigLoads(t *testing.T) {
	c := defaultSettings()
	if _, err := config.Load("../configs/brokerd.yml", nil, c); err != nil {
		t.Fatal(err)
	}
	if want := defaultSettings(); c.GC != want.GC {
		t.Errorf("configs/brokerd.yml sets %+v, the default is %+v", c.GC, want.GC)
	}
}

// TestConfigRefusesBadHeapFloor names the file, line and key of a
// gc.min.heap.bytes out of range.
func TestConfigRefusesBadHeapFloor(t *testing.T) {
	refusals(t, "log.dirs: /tmp/x\ngc.min.heap.bytes: -1\n", "{file}:2:1: gc.min.heap.bytes: must be from 0 (no floor)")
	refusals(t, "log.dirs: /tmp/x\ngc:\n  min.heap.bytes: 2199023255553\n", "gc.min.heap.bytes: must be from 0 (no floor) to 1099511627776")
}

// refusals loads yml as brokerd.yml and checks that the error names each
// of wants ({file} standing for the file name).
func refusals(t *testing.T, yml string, wants ...string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "brokerd.yml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path, nil, defaultSettings())
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range wants {
		want = strings.ReplaceAll(want, "{file}", path)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestConfigRefusesBadGroupSettings names the file, line and key of each
// group and socket setting brokerd cannot use, and refuses ZooKeeper.
func TestConfigRefusesBadGroupSettings(t *testing.T) {
	refusals(t, "log.dirs: /tmp/x\n"+
		"group.min.session.timeout.ms: 6000\n"+
		"group.max.session.timeout.ms: 1000\n"+
		"group.max.size: 0\n"+
		"offset.metadata.max.bytes: 0\n"+
		"zookeeper.connect: zk:2181\n",
		"{file}:3:1: group.max.session.timeout.ms",
		"{file}:4:1: group.max.size",
		"{file}:5:1: offset.metadata.max.bytes",
		"{file}:6:1: zookeeper.connect: brokerd needs no ZooKeeper",
	)
	refusals(t, "log.dirs: /tmp/x\n"+
		"socket.send.buffer.bytes: 0\n"+
		"socket.receive.buffer.bytes: -2\n",
		"{file}:2:1: socket.send.buffer.bytes: must be positive, or -1",
		"{file}:3:1: socket.receive.buffer.bytes: must be positive, or -1",
	)
}

// TestConfigRefusesBadSecuritySettings names the file, line and key of
// listener and security settings brokerd cannot use.
func TestConfigRefusesBadSecuritySettings(t *testing.T) {
	refusals(t, "log.dirs: /tmp/x\n"+
		"listeners: PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094\n"+
		"listener.security.protocol.map: PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SASL_SSL\n"+
		"ssl.keystore.type: JKS\n"+
		"ssl.client.auth: sometimes\n"+
		"sasl.enabled.mechanisms: PLAIN,GSSAPI\n"+
		"inter.broker.listener.name: BROKER\n"+
		"ssl.enabled.protocols: TLSv1.1,TLSv1.2\n",
		"sasl.jaas.config: the controller listener CONTROLLER is SASL_SSL: this node logs in there",
		"{file}:4:1: ssl.keystore.type: only PEM is supported",
		"{file}:5:1: ssl.client.auth: want none, requested or required",
		"{file}:6:1: sasl.enabled.mechanisms: GSSAPI is not served",
		"{file}:7:1: inter.broker.listener.name: inter.broker.listener.name BROKER is not one of the client listeners",
		`{file}:8:1: ssl.enabled.protocols: want TLSv1.2 or TLSv1.3, got "TLSv1.1" (older versions are not served)`,
		"ssl.keystore.location: listener SSL is SSL: set ssl.keystore.location",
	)
	for suites, want := range map[string]string{
		"TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "TLS 1.3's suites are all offered or none",
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA":                           `unknown suite "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA"`,
	} {
		refusals(t, "log.dirs: /tmp/x\nssl.cipher.suites: "+suites+"\n", "{file}:2:1: ssl.cipher.suites: "+want)
	}
	refusals(t, "log.dirs: /tmp/x\nsecurity.inter.broker.protocol: SASL_SSL\ninter.broker.listener.name: PLAINTEXT\n",
		"{file}:2:1: security.inter.broker.protocol: set either security.inter.broker.protocol or inter.broker.listener.name, not both")
	refusals(t, "log.dirs: /tmp/x\nsecurity.inter.broker.protocol: TLS\n",
		`{file}:2:1: security.inter.broker.protocol: want one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got "TLS"`)
	refusals(t, "log.dirs: /tmp/x\nssl.protocol: TLSv1.1\nssl.keystore.password: secret\nssl.truststore.password: secret\n",
		`{file}:2:1: ssl.protocol: want TLSv1.3, TLSv1.2 or TLS, got "TLSv1.1"`,
		"{file}:3:1: ssl.keystore.password: brokerd reads its stores as PEM files, which have no password",
		"{file}:4:1: ssl.truststore.password: brokerd reads its stores as PEM files")
	refusals(t, "log.dirs: /tmp/x\nssl.enabled.protocols: TLSv1.3\nssl.protocol: TLSv1.2\n",
		"{file}:3:1: ssl.protocol: TLSv1.2 would leave no version to connect with")
	refusals(t, "log.dirs: /tmp/x\nssl.enabled.protocols: TLSv1.3\nssl.cipher.suites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
		"{file}:3:1: ssl.cipher.suites: no suite of an enabled protocol (TLSv1.3) is listed")
}

// TestConfigRefusesBadListenerOverrides names the file, line and key of a
// misspelt listener.name.<listener>.<key>, of one for a listener not in
// listeners, and of an override whose value is bad.
func TestConfigRefusesBadListenerOverrides(t *testing.T) {
	refusals(t, "log.dirs: /tmp/x\n"+
		"listeners: PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9094\n"+
		"listener.name.controller.ssl.clientauth: required\n"+
		"listener.name.client.ssl.client.auth: required\n"+
		"listener.name.plaintext.ssl.client.auth: sometimes\n"+
		"listener.name.plaintext.connections.max.reauth.ms: soon\n"+
		"listener.name.plaintext.ssl.cipher.suites: TLS_RSA_WITH_RC4_128_SHA\n",
		"{file}:3:1: listener.name.controller.ssl.clientauth: unknown key",
		"{file}:4:1: listener.name.client.ssl.client.auth: unknown key: listener CLIENT is not in listeners",
		"{file}:5:1: listener.name.plaintext.ssl.client.auth: want none, requested or required",
		"{file}:6:1: listener.name.plaintext.connections.max.reauth.ms: want a whole number",
		"{file}:7:1: listener.name.plaintext.ssl.cipher.suites: TLS_RSA_WITH_RC4_128_SHA is insecure and not offered",
	)
}
