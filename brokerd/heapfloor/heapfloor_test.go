package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name        string
		base        int
		floor, live int64
		want        int
	}{
		{"nothing live yet: through the runtime's minimum", 100, 32 * mib, 0, 800},
		{"small live heap: through the runtime's minimum", 100, 32 * mib, 1 * mib, 800},
		{"live heap above the minimum: through the live heap", 100, 32 * mib, 8 * mib, 300},
		{"rounded up, never under the floor", 100, 32 * mib, 10 * mib, 220},
		{"GOGC alone reaches the floor", 100, 32 * mib, 16 * mib, 100},
		{"live heap over the floor", 100, 32 * mib, 100 * mib, 100},
		{"a higher GOGC is kept", 1000, 32 * mib, 8 * mib, 1000},
		{"a lower GOGC is raised", 50, 32 * mib, 20 * mib, 60},
		{"a lower GOGC that reaches the floor is kept", 50, 32 * mib, 24 * mib, 50},
	} {
		if got := percent(c.base, c.floor, c.live); got != c.want {
			t.Errorf("%s: percent(%d, %d, %d) = %d, want %d", c.name, c.base, c.floor, c.live, got, c.want)
		}
		// The goal the runtime derives from that GOGC reaches the floor.
		if c.floor > c.live {
			p := int64(percent(c.base, c.floor, c.live))
			if goal := max(c.live+c.live*p/100, runtimeMinimum*p/100); goal < c.floor {
				t.Errorf("%s: GOGC %d gives a goal of %d, under the floor %d", c.name, p, goal, c.floor)
			}
		}
	}
}

// readUint64 reads one uint64 runtime metric.
func readUint64(t *testing.T, name string) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("runtime metric %s is not served", name)
	}
	return s[0].Value.Uint64()
}

var sink []byte

// churn allocates n bytes of garbage in 64 KiB pieces and returns how
// many collector cycles ran meanwhile.
func churn(t *testing.T, n int) uint64 {
	before := readUint64(t, "/gc/cycles/total:gc-cycles")
	for range n / (64 << 10) {
		sink = make([]byte, 64<<10)
	}
	sink = nil
	return readUint64(t, "/gc/cycles/total:gc-cycles") - before
}

// TestFloor sets a floor on this process's own collector: the heap goal
// rises to the floor, far fewer cycles run for the same garbage, and Stop
// gives GOGC back.
func TestFloor(t *testing.T) {
	const floor = 64 << 20
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	runtime.GC()
	without := churn(t, 256<<20)

	f := Set(floor)
	defer f.Stop()
	// The floor follows each cycle: after a few, the goal is at the floor.
	for range 3 {
		runtime.GC()
	}
	deadline := time.Now().Add(10 * time.Second)
	for readUint64(t, "/gc/heap/goal:bytes") < floor {
		if time.Now().After(deadline) {
			t.Fatalf("heap goal %d after 10 s, want at least the floor %d (GOGC %d)", readUint64(t, "/gc/heap/goal:bytes"), floor, f.Percent())
		}
		time.Sleep(10 * time.Millisecond)
	}
	with := churn(t, 256<<20)
	t.Logf("cycles for 256 MiB of garbage: %d at GOGC 100, %d with a 64 MiB floor (GOGC %d)", without, with, f.Percent())
	if with > 8 || with*4 > without {
		t.Errorf("%d cycles with the floor for 256 MiB of garbage (%d without); want at most 8, and a quarter of those without", with, without)
	}

	f.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after Stop is %d, want the 100 it was", got)
	}
	if p := f.Percent(); p != 100 {
		t.Errorf("Percent after Stop = %d, want 100", p)
	}
}

// TestOff checks that a floor of 0, or GOGC=off, leaves the collector
// alone.
func TestOff(t *testing.T) {
	orig := debug.SetGCPercent(150)
	defer debug.SetGCPercent(orig)
	f := Set(0)
	runtime.GC()
	if p := f.Percent(); p != 150 {
		t.Errorf("floor 0: Percent = %d, want GOGC's 150", p)
	}
	f.Stop()
	if got := debug.SetGCPercent(-1); got != 150 {
		t.Errorf("floor 0 changed GOGC to %d", got)
	}
	f = Set(64 << 20)
	runtime.GC()
	f.Stop()
	if got := debug.SetGCPercent(150); got != -1 {
		t.Errorf("with GOGC=off, the floor turned the collector on (GOGC %d)", got)
	}
}
