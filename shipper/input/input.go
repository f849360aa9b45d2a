// Package input finds the files an input's paths match and reads them:
// discovery by glob (with `**`), file system notifications for quick
// pickup and a periodic scan as the safety net, one harvester goroutine per
// open file, rotation by rename and by copytruncate, deletion, recycled
// inodes, and the close_* and clean_* rules of Filebeat's log input.
//
// Files are known by content (package fileid), and how far each has been
// read and acknowledged lives in the registry (package registry). Lines
// become events (multiline joining, include/exclude filters) and go to a
// Sink a batch at a time (package publish), which waits when the queue
// towards the broker is full.
package input

import (
	"time"

	"logpipe/pipeline/event"
	"logpipe/shipper/filter"
	"logpipe/shipper/publish"
)

// Sink takes the batches of events harvesters read: the Kafka output, or
// the console output for debugging. See publish.Sink.
type Sink = publish.Sink

// Hooks are told what inputs do, for metrics. Nil fields are skipped.
type Hooks struct {
	// LinesRead counts lines read from files.
	LinesRead func(n int)
	// Filtered counts events dropped by include_lines/exclude_lines.
	Filtered func()
	// Harvesters is called with +1 when a file is opened for reading and
	// -1 when it is closed.
	Harvesters func(delta int)
	// BytesBehind reports, per path, the file size minus its
	// acknowledged offset; a negative n means the path is no longer read.
	BytesBehind func(path string, n int64)
}

// Host is the machine the events come from.
type Host struct {
	// Name goes into host.name; ID into the events' ids.
	Name, ID string
}

// input is one configured input at run time.
type input struct {
	s        *Settings
	globs    []*glob
	filter   filter.Lines
	nextScan time.Time
	scanned  bool // a first scan is done
	active   int  // harvesters running, for harvester_limit
	agent    event.Agent
}

func newInput(s *Settings, agent event.Agent) (*input, error) {
	in := &input{s: s, filter: filter.Lines{Include: s.IncludeLines, Exclude: s.ExcludeLines}, agent: agent}
	for _, p := range s.Paths {
		g, err := compileGlob(p)
		if err != nil {
			return nil, err
		}
		in.globs = append(in.globs, g)
	}
	return in, nil
}

// matches reports whether the input's paths could match path and
// exclude_files does not exclude it.
func (in *input) matches(path string) bool {
	for _, g := range in.globs {
		if g.match(path) {
			return !in.excluded(path)
		}
	}
	return false
}

func (in *input) excluded(path string) bool {
	for _, re := range in.s.ExcludeFiles {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}
