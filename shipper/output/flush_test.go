package output

import (
	"slices"
	"testing"
	"time"

	"logpipe/pipeline/config"
)

// hour is a bulk_flush_frequency no test waits for.
var hour = config.Duration(time.Hour)

// TestIdleBatchGoesAtOnce: with bulk_flush_frequency an hour, a lone event
// is sent as soon as it is placed, since no other event is waiting and its
// partition has nothing in flight; so is the next one.
func TestIdleBatchGoesAtOnce(t *testing.T) {
	addr, _ := startBroker(t)
	c := Config{Hosts: []string{addr}, Topic: "quiet", BulkFlushFrequency: &hour}
	o := startOutput(t, c)
	o.publish(t, "quiet")
	o.waitFor(t, "the first event's acknowledgement", func() bool { return o.acked == 1 })
	o.publish(t, "quiet")
	o.waitFor(t, "the second event's acknowledgement", func() bool { return o.acked == 2 })
	o.mu.Lock()
	defer o.mu.Unlock()
	if want := []int{1, 1}; !slices.Equal(o.requests, want) {
		t.Errorf("produce requests of %v events, want %v", o.requests, want)
	}
}

// TestBatchesFillWhileInFlight: while a request is in flight (the broker
// is stopped with SIGSTOP), events placed meanwhile fill batches up to
// bulk_max_size rather than going out one publish at a time, and the
// rest goes once the requests in flight have answered, without waiting
// for the hour's bulk_flush_frequency.
func TestBatchesFillWhileInFlight(t *testing.T) {
	addr, broker := startBrokerProcess(t)
	t.Cleanup(func() { broker.Stop(10 * time.Second) })
	const maxSize = 100
	c := Config{Hosts: []string{addr}, Topic: "busy", BulkFlushFrequency: &hour, BulkMaxSize: maxSize}
	o := startOutput(t, c)
	// The first event finds the topic and its leader.
	o.publish(t, "busy")
	o.waitFor(t, "the first event's acknowledgement", func() bool { return o.acked == 1 })

	if err := broker.Pause(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := broker.Resume(); err != nil {
				t.Error(err)
			}
		}
	}
	// Resumed before the broker is stopped at the end, even on failure.
	t.Cleanup(resume)
	o.publish(t, "busy")
	o.waitFor(t, "the second event's request", func() bool { return len(o.requests) == 2 })
	// 7 publishes of 50 events: 3 full batches go while the others are in
	// flight, and 50 events are left.
	for range 7 {
		o.publishN(t, "busy", 50)
	}
	o.waitFor(t, "the three full batches' requests", func() bool { return len(o.requests) == 5 })
	resume()
	o.waitFor(t, "every acknowledgement", func() bool { return o.acked == 2+7*50 })
	o.mu.Lock()
	defer o.mu.Unlock()
	if want := []int{1, 1, maxSize, maxSize, maxSize, 50}; !slices.Equal(o.requests, want) {
		t.Errorf("produce requests of %v events, want %v", o.requests, want)
	}
}
