package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logpipe/brokerd/broker"
	"logpipe/pipeline/config"
)

// TestExampleConfigLoads keeps configs/brokerd.yml in step with the config type.
func TestExampleConfigLoads(t *testing.T) {
	c := settings{Broker: broker.DefaultConfig()}
	if _, err := config.Load("../configs/brokerd.yml", nil, &c); err != nil {
		t.Fatal(err)
	}
}

// TestConfigRefusesBadGroupSettings names the file, line and key of each
// group setting brokerd cannot use, and refuses ZooKeeper.
func TestConfigRefusesBadGroupSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "brokerd.yml")
	yml := "log.dirs: /tmp/x\n" +
		"group.min.session.timeout.ms: 6000\n" +
		"group.max.session.timeout.ms: 1000\n" +
		"group.max.size: 0\n" +
		"offset.metadata.max.bytes: 0\n" +
		"zookeeper.connect: zk:2181\n"
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	c := settings{Broker: broker.DefaultConfig()}
	_, err := config.Load(path, nil, &c)
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		path + ":3:1: group.max.session.timeout.ms",
		path + ":4:1: group.max.size",
		path + ":5:1: offset.metadata.max.bytes",
		path + ":6:1: zookeeper.connect: brokerd needs no ZooKeeper",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
