// Package loadgen drives a Kafka-protocol broker with the franz-go client for
// benchmarks. Produce sends records of a fixed size for a fixed time, either
// as fast as the broker takes them or at a fixed rate, and times each record
// from the moment it is handed to the client until the broker acknowledges
// it. Consume reads a topic back from its start to its end and times that.
//
// The same code runs against brokerd and Apache Kafka, so differences in
// the figures come from the brokers, not from the load.
package loadgen

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MiB is the unit of the MiB/s figures.
const MiB = 1 << 20

// ProduceConfig says what Produce sends and how.
type ProduceConfig struct {
	// Brokers are the seed addresses (host:port).
	Brokers []string
	// Topic must exist; records are spread over its partitions by the
	// client's default (sticky) partitioner.
	Topic string
	// RecordSize is the length of each record's value; records have no key.
	RecordSize int
	// AllAcks asks for acks=all with the idempotent producer (the client's
	// default); false asks for acks=1, where idempotence is off, as the
	// Java client also does.
	AllAcks bool
	// Duration is how long records are sent. The records still buffered
	// then are flushed and counted.
	Duration time.Duration
	// Rate is the number of records sent per second; zero sends as fast
	// as the client and broker allow.
	Rate int
	// OneAtATime sends each record only once the one before it is
	// acknowledged (Rate is then ignored), so that every latency is one
	// produce round trip with nothing queued before it in the client.
	OneAtATime bool
	// Linger is how long the client waits to fill a batch; a negative
	// value keeps franz-go's default (10 ms).
	Linger time.Duration
	// Warmup leaves the records handed to the client in the run's first
	// Warmup out of Latencies: they are sent, acknowledged and counted as
	// the others, but their latency, which includes a new client's and a
	// new topic's start (a broker may take hundreds of milliseconds to
	// serve a topic's first produce), is not the steady state's.
	Warmup time.Duration
	// MaxRecords, if positive, ends sending once that many records were
	// handed to the client, even before Duration is over.
	MaxRecords int64
	// Stop, when closed, ends sending before Duration is over; the
	// records already handed to the client are still waited for.
	Stop <-chan struct{}
	// Opts are more client options, applied after Produce's own (a
	// partitioner, hooks, retry and metadata timing).
	Opts []kgo.Opt
}

// ProduceResult is what Produce measured.
type ProduceResult struct {
	// Sent is the number of records handed to the client.
	Sent int64
	// Records and Bytes count the records acknowledged by the broker and
	// their value bytes.
	Records int64
	Bytes   int64
	// Failed counts records the client gave up on; FirstError is the first
	// such failure.
	Failed     int64
	FirstError error
	// Elapsed runs from the first send to the last acknowledgement.
	Elapsed time.Duration
	// Latencies holds, sorted, each acknowledged record's time from being
	// handed to the client to its acknowledgement, except those sent in
	// the config's Warmup.
	Latencies Latencies
}

// RecordsPerSec returns the acknowledged records per second.
func (r ProduceResult) RecordsPerSec() float64 { return perSec(float64(r.Records), r.Elapsed) }

// MiBPerSec returns the acknowledged value bytes per second, in MiB.
func (r ProduceResult) MiBPerSec() float64 { return perSec(float64(r.Bytes)/MiB, r.Elapsed) }

// Produce sends records as cfg says and waits for every one to be
// acknowledged or to fail. It returns an error only if it could not run;
// failed records are counted in the result. Cancelling ctx stops sending.
func Produce(ctx context.Context, cfg ProduceConfig) (ProduceResult, error) {
	if cfg.RecordSize <= 0 || cfg.Duration <= 0 || cfg.Rate < 0 {
		return ProduceResult{}, fmt.Errorf("loadgen: bad produce config: record size %d, duration %v, rate %d", cfg.RecordSize, cfg.Duration, cfg.Rate)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}
	if cfg.AllAcks {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	if cfg.Linger >= 0 {
		opts = append(opts, kgo.ProducerLinger(cfg.Linger))
	}
	opts = append(opts, cfg.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return ProduceResult{}, fmt.Errorf("loadgen: %w", err)
	}
	defer cl.Close()
	// Connect and load the topic's metadata before the clock starts.
	if err := cl.Ping(ctx); err != nil {
		return ProduceResult{}, fmt.Errorf("loadgen: %w", err)
	}
	if _, err := kadm.NewClient(cl).Metadata(ctx, cfg.Topic); err != nil {
		return ProduceResult{}, fmt.Errorf("loadgen: %w", err)
	}

	payload := make([]byte, cfg.RecordSize)
	_, _ = rand.Read(payload)

	var (
		mu      sync.Mutex
		res     ProduceResult
		lastAck time.Time
	)
	capacity := 1 << 16
	if cfg.Rate > 0 {
		capacity = int(float64(cfg.Rate)*cfg.Duration.Seconds()) + 1
	}
	res.Latencies = make(Latencies, 0, capacity)

	start := time.Now()
	end := start.Add(cfg.Duration)
	sending := func(now time.Time) bool {
		select {
		case <-cfg.Stop:
			return false
		default:
		}
		return ctx.Err() == nil && now.Before(end) && (cfg.MaxRecords <= 0 || res.Sent < cfg.MaxRecords)
	}
	// send hands one record to the client; done, if not nil, is called
	// once the record is acknowledged or has failed.
	send := func(done func()) {
		sent := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: payload}, func(r *kgo.Record, err error) {
			now := time.Now()
			if done != nil {
				defer done()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				if res.FirstError == nil {
					res.FirstError = err
				}
				return
			}
			res.Records++
			res.Bytes += int64(len(r.Value))
			if sent.Sub(start) >= cfg.Warmup {
				res.Latencies = append(res.Latencies, now.Sub(sent))
			}
			lastAck = now
		})
		res.Sent++ // only this goroutine writes Sent
	}
	switch {
	case cfg.OneAtATime:
		acked := make(chan struct{}, 1)
		for sending(time.Now()) {
			send(func() { acked <- struct{}{} })
			<-acked
		}
	case cfg.Rate == 0:
		for sending(time.Now()) {
			send(nil)
		}
	default:
		interval := time.Second / time.Duration(cfg.Rate)
		for {
			now := time.Now()
			if !sending(now) {
				break
			}
			// Send every record that is due by now, then sleep until the
			// next one is.
			due := int64(now.Sub(start)/interval) + 1
			for res.Sent < due {
				send(nil)
			}
			next := start.Add(time.Duration(res.Sent) * interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}
	flushErr := cl.Flush(ctx)

	mu.Lock()
	defer mu.Unlock()
	if !lastAck.IsZero() {
		res.Elapsed = lastAck.Sub(start)
	}
	slices.Sort(res.Latencies)
	if flushErr != nil && ctx.Err() == nil {
		return res, fmt.Errorf("loadgen: flush: %w", flushErr)
	}
	return res, nil
}

// ConsumeResult is what Consume measured.
type ConsumeResult struct {
	// Records and Bytes count the records read and their value bytes.
	Records int64
	Bytes   int64
	// Elapsed runs from the first fetch to the last record.
	Elapsed time.Duration
}

// RecordsPerSec returns the records read per second.
func (r ConsumeResult) RecordsPerSec() float64 { return perSec(float64(r.Records), r.Elapsed) }

// MiBPerSec returns the value bytes read per second, in MiB.
func (r ConsumeResult) MiBPerSec() float64 { return perSec(float64(r.Bytes)/MiB, r.Elapsed) }

// Consume reads every partition of topic from its log start offset to the
// end offset it has when Consume starts, without a consumer group, with the
// client's default fetch sizes (50 MiB per request, 1 MiB per partition).
// It stops at the end offsets or when ctx ends, which is an error. Opts
// are more client options, such as TLS and SASL, for every client it makes.
func Consume(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) (ConsumeResult, error) {
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return ConsumeResult{}, fmt.Errorf("loadgen: %w", err)
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	starts, err := ka.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return ConsumeResult{}, fmt.Errorf("loadgen: start offsets of %s: %w", topic, err)
	}
	ends, err := ka.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return ConsumeResult{}, fmt.Errorf("loadgen: end offsets of %s: %w", topic, err)
	}
	// Offsets to read per partition; partitions with nothing to read are
	// not consumed at all.
	left := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		if n := o.Offset - s.Offset; n > 0 {
			left[o.Partition] = n
			from[o.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	var res ConsumeResult
	if len(left) == 0 {
		return res, nil
	}

	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
	}, opts...)...)
	if err != nil {
		return res, fmt.Errorf("loadgen: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return res, fmt.Errorf("loadgen: %w", err)
	}
	start := time.Now()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("loadgen: consume %s: %d records read, %d partitions unfinished: %w", topic, res.Records, len(left), err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("%s[%d]: %w", t, p, err))
		})
		if ferr != nil {
			return res, fmt.Errorf("loadgen: consume: %w", ferr)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				res.Records++
				res.Bytes += int64(len(r.Value))
			}
			if n, ok := left[p.Partition]; ok {
				n -= int64(len(p.Records))
				if n <= 0 {
					delete(left, p.Partition)
				} else {
					left[p.Partition] = n
				}
			}
		})
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// Latencies are per-record durations, sorted from shortest to longest.
type Latencies []time.Duration

// Percentile returns the smallest latency that at least p percent of the
// records did not exceed (the nearest-rank method), or 0 if there are none.
func (l Latencies) Percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	rank := int(p / 100 * float64(len(l)))
	if float64(rank) < p/100*float64(len(l)) {
		rank++
	}
	rank = min(max(rank, 1), len(l))
	return l[rank-1]
}

func perSec(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}
