package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"time"
)

// Program is one of this module's commands, to be built for a test run.
type Program struct {
	// Package is the command's import path, such as "logpipe/brokerd".
	Package string
	// Race builds it with the race detector.
	Race bool
}

// FileName is the name BuildPrograms gives the program's binary: the last
// element of its import path, with "-race" added when Race is set.
func (p Program) FileName() string {
	name := path.Base(p.Package)
	if p.Race {
		name += "-race"
	}
	return name
}

// BuildPrograms builds each program with `go build` into the folder dir
// and returns the binaries' paths, in the order of progs. A build failure's
// error holds the compiler's output, and the binaries built before it are
// removed again.
func BuildPrograms(dir string, progs ...Program) ([]string, error) {
	paths := make([]string, len(progs))
	for i, p := range progs {
		paths[i] = filepath.Join(dir, p.FileName())
		args := []string{"build", "-o", paths[i]}
		if p.Race {
			args = append(args, "-race")
		}
		args = append(args, p.Package)
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			for _, built := range paths[:i] {
				os.Remove(built)
			}
			return nil, fmt.Errorf("devstack: go %v: %w\n%s", args, err, out)
		}
	}
	return paths, nil
}

// BrokerdOptions says how StartBrokerd runs a brokerd binary. Bin, Addr
// and DataDir are required.
type BrokerdOptions struct {
	// Bin is the path of the brokerd binary (see BuildPrograms).
	Bin string
	// Addr is host:port of the node's PLAINTEXT listener.
	Addr string
	// DataDir is the node's log.dirs.
	DataDir string
	// LogPath receives the process's output; empty means brokerd.log
	// beside DataDir.
	LogPath string
	// Settings are more configuration overrides, each "key=value", passed
	// with -E after the listener and data settings.
	Settings []string
	// ConfigFile, when set, is the node's whole YAML configuration: it is
	// passed with -c and nothing else is (Addr and DataDir must match
	// what it says; Settings still follow as -E).
	ConfigFile string
	// Command makes the command that runs the binary (for example inside
	// a network namespace); nil means exec.Command.
	Command func(name string, args ...string) *exec.Cmd
}

// StartBrokerd starts a single brokerd node as opts say and waits until
// its listener accepts TCP connections, for at most as long as ctx allows.
// The caller stops the process. A failure's error holds the tail of its
// log, and the process is stopped then.
func StartBrokerd(ctx context.Context, opts BrokerdOptions) (*Process, error) {
	if opts.Bin == "" || opts.Addr == "" || opts.DataDir == "" {
		return nil, errors.New("devstack: StartBrokerd needs Bin, Addr and DataDir")
	}
	logPath := opts.LogPath
	if logPath == "" {
		logPath = filepath.Join(filepath.Dir(opts.DataDir), "brokerd.log")
	}
	args := []string{"-E", "listeners=PLAINTEXT://" + opts.Addr, "-E", "log.dirs=" + opts.DataDir}
	if opts.ConfigFile != "" {
		args = []string{"-c", opts.ConfigFile}
	}
	for _, s := range opts.Settings {
		args = append(args, "-E", s)
	}
	command := opts.Command
	if command == nil {
		command = exec.Command
	}
	p, err := StartProcess("brokerd", command(opts.Bin, args...), logPath)
	if err != nil {
		return nil, err
	}
	if err := WaitFor(ctx, 20*time.Millisecond, p, func(context.Context) error {
		c, err := net.DialTimeout("tcp", opts.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		p.Stop(10 * time.Second)
		return nil, err
	}
	return p, nil
}
