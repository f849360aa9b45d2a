package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

var prog = Program{Name: "brokerd", Summary: "a Kafka-protocol broker", Subcommands: []string{"topics  manage topics"}}

func TestParse(t *testing.T) {
	var out bytes.Buffer
	opts, done, _ := Parse(prog, []string{"-c", "b.yml", "-E", "node.id=2", "--E", "log.dirs=[/x]", "topics", "--list"}, &out)
	if done {
		t.Fatalf("done early: %s", out.String())
	}
	want := Options{ConfigFile: "b.yml", Overrides: []string{"node.id=2", "log.dirs=[/x]"}, Args: []string{"topics", "--list"}}
	if !reflect.DeepEqual(opts, want) {
		t.Fatalf("got %+v", opts)
	}
}

func TestHelpVersionAndErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "Commands (run `COMMAND --help` for each):\n  topics  manage topics"},
		{[]string{"-h"}, 0, "-E key=value"},
		{[]string{"--version"}, 0, "brokerd " + Version},
		{[]string{"-E", "novalue"}, 2, "want key=value"},
		{[]string{"--nope"}, 2, "flag provided but not defined: -nope"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		_, done, code := Parse(prog, c.args, &out)
		if !done || code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: done=%v code=%d out=%q", c.args, done, code, out.String())
		}
	}
}
