package replica

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestHighWatermarkIsLowestLEOInISR(t *testing.T) {
	l := NewLeader(1, []int32{1, 2, 3}, []int32{1, 2, 3}, 10, 10, t0)
	steps := []struct {
		name   string
		do     func() bool
		moved  bool
		wantHW int64
	}{
		{"leader appends: followers hold the HW", func() bool { return l.Advance(15) }, false, 10},
		{"follower 2 fetches at 15", func() bool { return l.Fetched(2, 15, 15, at(10)) }, false, 10},
		{"follower 3 fetches at 12", func() bool { return l.Fetched(3, 12, 15, at(11)) }, true, 12},
		{"follower 3 fetches at 15", func() bool { return l.Fetched(3, 15, 15, at(12)) }, true, 15},
		{"a fetch beyond the leader's LEO counts as the LEO", func() bool { return l.Fetched(3, 99, 15, at(13)) }, false, 15},
		{"the HW never goes back", func() bool { return l.Fetched(2, 11, 15, at(14)) }, false, 15},
	}
	for _, s := range steps {
		if got := s.do(); got != s.moved || l.HighWatermark() != s.wantHW {
			t.Fatalf("%s: moved %v, HW %d; want moved %v, HW %d", s.name, got, l.HighWatermark(), s.moved, s.wantHW)
		}
	}
	// Alone in the ISR, the leader's HW follows its LEO.
	solo := NewLeader(1, []int32{1}, []int32{1}, 0, 0, t0)
	if !solo.Advance(7) || solo.HighWatermark() != 7 {
		t.Fatalf("single replica: HW %d, want 7", solo.HighWatermark())
	}
	// An ISR member that has not fetched in this epoch holds the HW.
	fresh := NewLeader(1, []int32{1, 2}, []int32{1, 2}, 20, 5, t0)
	if fresh.Advance(25) || fresh.HighWatermark() != 5 {
		t.Fatalf("new leader: HW %d, want 5 until the follower fetches", fresh.HighWatermark())
	}
}

func TestLaggingFollowerLeavesAndRejoins(t *testing.T) {
	lag := 100 * time.Millisecond
	l := NewLeader(1, []int32{1, 2, 3}, []int32{1, 2, 3}, 0, 0, t0)
	// Both keep up for a while.
	for ms := 10; ms <= 50; ms += 10 {
		l.Advance(int64(ms))
		l.Fetched(2, int64(ms), int64(ms), at(ms))
		l.Fetched(3, int64(ms), int64(ms), at(ms))
	}
	if _, change := l.WantISR(50, lag, at(60), anyone); change {
		t.Fatal("ISR change wanted while every follower keeps up")
	}
	// Follower 3 stops fetching; 2 keeps up.
	for ms := 60; ms <= 200; ms += 10 {
		l.Advance(int64(ms))
		l.Fetched(2, int64(ms), int64(ms), at(ms))
	}
	want, change := l.WantISR(200, lag, at(200), anyone)
	if !change || !slices.Equal(want, []int32{1, 2}) {
		t.Fatalf("after 3 lagged 150ms: want %v (%v), want [1 2]", want, change)
	}
	l.Propose(want)
	// While the shrink is pending the HW still waits for 3 (KIP-497).
	if l.Advance(210) || l.HighWatermark() != 50 {
		t.Fatalf("pending shrink: HW %d, want 50", l.HighWatermark())
	}
	if _, change := l.WantISR(210, lag, at(210), anyone); change {
		t.Fatal("a second proposal while one is pending")
	}
	if !l.Committed([]int32{1, 2}, 210) || l.HighWatermark() != 200 {
		t.Fatalf("shrink committed: HW %d, want 200 (follower 2's LEO)", l.HighWatermark())
	}
	// 3 comes back, behind: not yet eligible.
	l.Fetched(3, 100, 210, at(220))
	if _, change := l.WantISR(210, lag, at(220), anyone); change {
		t.Fatal("3 rejoins below the HW")
	}
	// Caught up to the HW: it rejoins, and the HW waits for it at once.
	l.Fetched(2, 210, 210, at(225))
	l.Fetched(3, 210, 210, at(230))
	want, change = l.WantISR(210, lag, at(230), anyone)
	if !change || !slices.Equal(want, []int32{1, 2, 3}) {
		t.Fatalf("after catching up: want %v (%v), want [1 2 3]", want, change)
	}
	l.Propose(want)
	l.Advance(220)
	if l.HighWatermark() != 210 {
		t.Fatalf("pending expansion: HW %d, want 210 (3's LEO)", l.HighWatermark())
	}
}

func TestFollowerBehindAtStartOfEpochDoesNotRejoin(t *testing.T) {
	// A new leader at LEO 100 with HW 80; follower 2 is out of the ISR
	// and has 90: it reached the HW but not the epoch's start, so it may
	// hold records the leader does not.
	l := NewLeader(1, []int32{1, 2}, []int32{1}, 100, 80, t0)
	l.Fetched(2, 90, 100, at(10))
	if _, change := l.WantISR(100, time.Second, at(10), anyone); change {
		t.Fatal("a follower below the epoch start rejoined")
	}
	l.Fetched(2, 100, 100, at(20))
	if want, change := l.WantISR(100, time.Second, at(20), anyone); !change || !slices.Equal(want, []int32{1, 2}) {
		t.Fatalf("at the epoch start: %v %v", want, change)
	}
}

// anyone is an eligibility check that takes every replica.
func anyone(int32) bool { return true }

// TestIneligibleFollowerIsNotProposed: a follower that caught up and then
// was fenced (or began a controlled shutdown) is left out of the proposed
// ISR, so that the others that caught up still rejoin.
func TestIneligibleFollowerIsNotProposed(t *testing.T) {
	l := NewLeader(1, []int32{1, 2, 3}, []int32{1}, 100, 100, t0)
	l.Fetched(2, 100, 100, at(10))
	l.Fetched(3, 100, 100, at(10))
	fenced := func(id int32) bool { return id != 2 }
	if want, change := l.WantISR(100, time.Second, at(10), fenced); !change || !slices.Equal(want, []int32{1, 3}) {
		t.Fatalf("with node 2 fenced: %v %v, want [1 3]", want, change)
	}
	if want, change := l.WantISR(100, time.Second, at(10), anyone); !change || !slices.Equal(want, []int32{1, 2, 3}) {
		t.Fatalf("with every node live: %v %v, want [1 2 3]", want, change)
	}
}
