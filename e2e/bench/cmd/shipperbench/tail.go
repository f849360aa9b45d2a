package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"logpipe/e2e/bench/accesslog"
)

// tailLoad is the many-files workload: lines access-log lines in all,
// spread evenly over files files that a writer appends to in turn, chunk
// lines to one file at a time (one write call), as fast as it can.
type tailLoad struct {
	dir   string
	files int
	lines int
	chunk int
	seed  uint64
}

// paths returns the files' names.
func (t tailLoad) paths() []string {
	out := make([]string, t.files)
	for i := range out {
		out[i] = filepath.Join(t.dir, fmt.Sprintf("access-%03d.log", i))
	}
	return out
}

// glob returns the pattern that matches the files and nothing else.
func (t tailLoad) glob() string { return filepath.Join(t.dir, "access-*.log") }

// create makes the files, empty, so a peer started next finds them all
// and reads each from its start.
func (t tailLoad) create() error {
	for _, p := range t.paths() {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return fmt.Errorf("shipperbench: %w", err)
		}
	}
	return nil
}

// perFile returns how many lines file i gets: the same for all, the
// remainder to the first ones.
func (t tailLoad) perFile(i int) int {
	n := t.lines / t.files
	if i < t.lines%t.files {
		n++
	}
	return n
}

// write appends every file's lines, round by round, and returns the bytes
// written and how long it took. File i's lines are those of an
// accesslog.Generator seeded with seed+1+i.
func (t tailLoad) write(ctx context.Context) (int64, time.Duration, error) {
	paths := t.paths()
	files := make([]*os.File, len(paths))
	gens := make([]*accesslog.Generator, len(paths))
	left := make([]int, len(paths))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, p := range paths {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return 0, 0, fmt.Errorf("shipperbench: %w", err)
		}
		files[i] = f
		gens[i] = accesslog.New(t.seed + 1 + uint64(i))
		left[i] = t.perFile(i)
	}
	start := time.Now()
	var total int64
	buf := make([]byte, 0, t.chunk*400)
	for more := true; more; {
		if err := ctx.Err(); err != nil {
			return total, time.Since(start), err
		}
		more = false
		for i, f := range files {
			n := min(t.chunk, left[i])
			if n == 0 {
				continue
			}
			buf = buf[:0]
			for range n {
				buf = gens[i].Append(buf)
			}
			if _, err := f.Write(buf); err != nil {
				return total, time.Since(start), fmt.Errorf("shipperbench: %w", err)
			}
			total += int64(len(buf))
			left[i] -= n
			more = more || left[i] > 0
		}
	}
	return total, time.Since(start), nil
}
