// Package compose_test checks the repository's docker-compose.yml and its
// overrides: loaded by compose-go (the library of Compose v2) and by
// Debian's docker-compose 1.29, then run for real on a Docker engine
// (started by the test when none answers), with stand-ins for the images
// this machine cannot pull, and without Kibana (deploy/compose/
// without-kibana.yml), which cannot be had here. The running stack must
// bring every service up in order and healthy, index what httpd logs,
// parsed, and keep the count exact across a kill -9 of a broker and of
// the indexer while lines flow, and across `down` and `up`. The secured
// variant (docker-compose.secured.yml) runs too: the same lines, indexed
// by the shipper and the indexer over SASL_SSL with their least
// privileges, and what they may not do refused.
package compose_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logpipe/internal/devstack"
)

// repoRoot returns the repository's root, where docker-compose.yml is.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// stack is one compose project of the repository's docker-compose.yml,
// run with Debian's docker-compose.
type stack struct {
	t       *testing.T
	root    string
	project string
	// files are the compose files, relative to root, in the order given
	// to docker-compose: docker-compose.yml, then its overrides.
	files []string
	// vars are the compose variables set for this project, over the
	// process's environment.
	vars map[string]string
}

// composeTimeout bounds one docker-compose command; builds are the long
// ones (the Go build of three binaries on two shared cores).
const composeTimeout = 20 * time.Minute

// run runs docker-compose with the project's name and variables and
// returns its standard output. A failure's error holds the output.
func (s *stack) run(args ...string) (string, error) {
	s.t.Helper()
	composeBin, err := exec.LookPath("docker-compose")
	if err != nil {
		s.t.Fatalf("compose: docker-compose is not installed: run deploy/deps.sh (it installs docker.io docker-compose debootstrap)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), composeTimeout)
	defer cancel()
	global := []string{"-p", s.project}
	for _, f := range s.files {
		global = append(global, "-f", filepath.Join(s.root, f))
	}
	cmd := exec.CommandContext(ctx, composeBin, append(global, args...)...)
	cmd.Dir = s.root
	cmd.Env = dockerEnv(s.t)
	for k, v := range s.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker-compose %s: %w\n%s%s", strings.Join(args, " "), err, tail(out.String(), 3000), tail(errOut.String(), 6000))
	}
	return out.String(), nil
}

// must runs docker-compose and fails the test if it fails.
func (s *stack) must(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// container returns the id of service's container, or "" if it has none.
func (s *stack) container(service string) string {
	s.t.Helper()
	return strings.TrimSpace(s.must("ps", "-q", service))
}

// exec runs a command in service's running container and returns its
// standard output.
func (s *stack) exec(service string, cmd ...string) string {
	s.t.Helper()
	return s.must(append([]string{"exec", "-T", service}, cmd...)...)
}

// logs returns the last lines of every container's output, for a failure.
func (s *stack) logs() string {
	out, err := s.run("logs", "--no-color", "--tail=60")
	if err != nil {
		return err.Error()
	}
	return out
}

// envList returns vars as KEY=VALUE strings.
func envList(vars map[string]string) []string {
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}
