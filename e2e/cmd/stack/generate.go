package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"logpipe/internal/devstack"
)

// Of the generator's lines, one in errorEvery goes to error_log, and one
// error in traceEvery comes with a PHP stack trace (lines the shipper's
// multiline setting joins to it).
const (
	errorEvery = 5
	traceEvery = 10
)

// generate appends httpd lines stamped with the current time (UTC, which
// configs/indexer.yml reads error-log times in) to access_log and
// error_log in dir, rate lines a second, until ctx ends. A rate of 0 or
// less writes nothing.
func generate(ctx context.Context, dir string, rate float64) error {
	if rate <= 0 {
		return nil
	}
	open := func(name string) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("stack: generator: %w", err)
		}
		return f, nil
	}
	access, err := open("access_log")
	if err != nil {
		return err
	}
	defer access.Close()
	errors, err := open("error_log")
	if err != nil {
		return err
	}
	defer errors.Close()

	g := devstack.NewHTTPDLog(rand.Uint64())
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now().UTC()
		f, line := access, g.Access(now, "")
		switch {
		case n%(errorEvery*traceEvery) == errorEvery-1:
			f, line = errors, g.ErrorTrace(now, "")
		case n%errorEvery == errorEvery-1:
			f, line = errors, g.Error(now, "")
		}
		if _, err := f.WriteString(line + "\n"); err != nil {
			return fmt.Errorf("stack: generator: %w", err)
		}
	}
}
