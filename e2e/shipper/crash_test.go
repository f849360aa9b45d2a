package shipper_test

import (
	"context"
	"logpipe/pipeline/event"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestCrash kills the shipper with SIGKILL at 20 random moments while a
// file is written and rotated, and starts it again each time. No line may
// be missing, and a line may arrive twice only if the registry did not yet
// hold it when the shipper died.
func TestCrash(t *testing.T) {
	const kills = 20
	forEachBroker(t, func(t *testing.T, b broker) {
		a := newAccessLog(t)
		path, topic, w := a.path, a.topic, a.w
		c := consume(t, b.bootstrap, topic)
		s := startShipper(t, a.dir, a.config(b, ""), "-E", "name=crash-host")
		ctx, stop := context.WithCancel(context.Background())
		done := w.run(ctx, time.Millisecond)
		defer func() { stop(); <-done }()

		type restart struct {
			at       time.Time        // just before the new process started
			registry map[string]int64 // file identity -> acknowledged offset at the kill
		}
		ids := map[string]bool{} // every file identity seen in a registry
		var restarts []restart
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
		for i := 0; i < kills; i++ {
			// A random moment 0.1 to 1.3 s into the new process's life:
			// starting up, catching up, or tailing, before or after its
			// first registry writes (registry.flush is 1 s).
			time.Sleep(time.Duration(100+r.IntN(1200)) * time.Millisecond)
			if i == kills/2 {
				// One rename rotation in the middle of it all.
				w.mu.Lock()
				os.Rename(path, path+".1")
				w.reopen()
				w.mu.Unlock()
			}
			s.proc.Kill()
			reg := map[string]int64{}
			for _, e := range s.registry() {
				reg[e.ID] = e.Offset
				ids[e.ID] = true
			}
			restarts = append(restarts, restart{at: time.Now(), registry: reg})
			s.start(shipperBin, "-E", "name=crash-host")
		}
		stop()
		<-done
		total := w.n
		c.waitLines(s, total)
		s.stop()
		recs := c.records()
		checkExactlyOnce(t, recs, total)

		// Whatever a restarted shipper sent starts at or after the offset
		// the registry held for its file when the previous one died.
		dups := 0
		seen := map[string]bool{}
		for _, rec := range recs {
			if seen[rec.Event.Event.ID] {
				dups++
			}
			seen[rec.Event.Event.ID] = true
			for i, rs := range restarts {
				if i+1 < len(restarts) && !rec.Event.Timestamp.Before(restarts[i+1].at) {
					continue // sent by a later process
				}
				if rec.Event.Timestamp.Before(rs.at.Truncate(time.Millisecond).Add(time.Millisecond)) {
					break // sent before this restart
				}
				// The file the line came from: the identity its id was made with.
				file := ""
				for id := range ids {
					if event.ID("crash-host", id, rec.Log.Offset) == rec.Event.Event.ID {
						file = id
					}
				}
				if off := rs.registry[file]; file != "" && rec.Log.Offset < off {
					t.Errorf("line %q at %d of %s was sent again after restart %d although the registry held offset %d", rec.Message[:8], rec.Log.Offset, rec.Log.File.Path, i, off)
				}
				break
			}
		}
		t.Logf("%d kills, %d lines, %d records, %d duplicates (same event.id)", kills, total, len(recs), dups)
	})
}
