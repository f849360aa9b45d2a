package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logpipe/pipeline/telemetry"
)

type testConfig struct {
	telemetry.Config `yaml:",inline"`
	Topic            string `yaml:"output.kafka.topic"`
}

func TestMainLoadsConfigAndRuns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shipper.yml")
	os.WriteFile(path, []byte("output.kafka.topic: httpd\nhttp.enabled: true\nhttp.port: 0\nlogging.level: debug\n"), 0o644)
	cfg := &testConfig{}
	var got string
	var stdout, stderr bytes.Buffer
	code := MainIO(prog, []string{"-c", path, "-E", "output.kafka.topic=other", "sub"}, cfg, func(ctx context.Context, env *Env) error {
		got = cfg.Topic
		if env.Telemetry == nil {
			t.Error("http.enabled did not start the server")
			return nil
		}
		resp, err := http.Get("http://" + env.Telemetry.Addr() + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("healthz: %v %v", resp, err)
		}
		if len(env.Args) != 1 || env.Args[0] != "sub" {
			t.Errorf("args %v", env.Args)
		}
		if p := env.Positions["output.kafka.topic"]; p.Line != 0 || p.File != "-E" {
			t.Errorf("position of override: %+v", p)
		}
		return nil
	}, &stdout, &stderr)
	if code != 0 || got != "other" {
		t.Fatalf("code %d topic %q stderr %s", code, got, stderr.String())
	}
}

func TestMainConfigError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shipper.yml")
	os.WriteFile(path, []byte("output.kafka.topic: a\nloging.level: debug\n"), 0o644)
	var stdout, stderr bytes.Buffer
	code := MainIO(prog, []string{"-c", path}, &testConfig{}, func(context.Context, *Env) error {
		t.Fatal("run called with a bad config")
		return nil
	}, &stdout, &stderr)
	want := path + `:2:1: loging: unknown key; did you mean "logging"?`
	if code != 1 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("code %d stderr %q, want %q", code, stderr.String(), want)
	}
}
