package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"logpipe/e2e/bench/benchkit"
)

const (
	logstashTopic      = "logstash-in"
	logstashPartitions = 100
	logstashGroup      = "logstash"
)

// logstashConsumerProps are the Java consumer settings Logstash's kafka
// input gives it, as the issue lists them, plus the offset reset that lets
// a new group read records written before it joined.
var logstashConsumerProps = map[string]string{
	"max.poll.records":        "500",
	"fetch.max.wait.ms":       "500",
	"fetch.min.bytes":         "1",
	"enable.auto.commit":      "true",
	"auto.commit.interval.ms": "5000",
	"auto.offset.reset":       "earliest",
}

// logstashRun is what the Logstash part measured on one broker: the
// pre-fill and the Java consumer's read of it; nil is a step that failed.
type logstashRun struct {
	name    string
	load    string
	prefill *perfProduce
	consume *perfConsume
	errs    []string
}

// runLogstash starts a broker, pre-fills a 100-partition topic with
// ProducerPerformance, reads nine tenths of it (perfConsumeTarget) with the
// Java consumer configured as Logstash configures it, perfConsumeRuns
// times in new groups, and stops the broker.
func runLogstash(ctx context.Context, o *options, r *logstashRun, start func(context.Context) (benchkit.Broker, error)) error {
	r.load = strings.Fields(benchkit.LoadAverage())[0]
	log.Printf("%s logstash: starting (load average %s)", r.name, r.load)
	srv, err := start(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop()
	boot := srv.Bootstrap()
	prefix := r.name + " logstash"
	step := func(what string, f func(context.Context) error) {
		runStep(ctx, o.stepTimeout(), &r.errs, prefix, what, f)
	}
	step("pre-fill (ProducerPerformance)", func(ctx context.Context) error {
		if err := benchkit.CreateTopic(ctx, boot, logstashTopic, logstashPartitions); err != nil {
			return err
		}
		pp, err := runProducerPerformance(ctx, boot, logstashTopic, o.logstashRecords, o.scaleRecordSize, "1")
		if err != nil {
			return err
		}
		if pp.records != o.logstashRecords {
			return fmt.Errorf("brokerbench: ProducerPerformance sent %d of %d records", pp.records, o.logstashRecords)
		}
		r.prefill = &pp
		log.Printf("%s: pre-filled %d records at %.0f records/s", prefix, pp.records, pp.recordsPerSec)
		return nil
	})
	if r.prefill == nil {
		return ctx.Err()
	}
	step("consume (Logstash settings)", func(ctx context.Context) error {
		var dirs []string
		defer func() {
			for _, d := range dirs {
				os.RemoveAll(d)
			}
		}()
		config := func(group string) ([]string, error) {
			conf, err := writeConsumerConfig(group, logstashConsumerProps)
			if err != nil {
				return nil, err
			}
			dirs = append(dirs, filepath.Dir(conf))
			return []string{"--consumer.config", conf}, nil
		}
		pc, err := medianConsumerPerformance(ctx, boot, logstashTopic, logstashGroup, perfConsumeTarget(o.logstashRecords), prefix, config)
		if err != nil {
			return err
		}
		r.consume = &pc
		log.Printf("%s: consumed at %.0f records/s (group join %d ms)", prefix, pc.recordsPerSec, pc.rebalanceMs)
		return nil
	})
	return ctx.Err()
}
