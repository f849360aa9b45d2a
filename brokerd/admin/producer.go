package admin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Delivery limits of the console producer: Kafka's producer defaults.
const (
	producerDeliveryTimeout = 2 * time.Minute  // delivery.timeout.ms
	producerInterruptFlush  = 30 * time.Second // how long an interrupted run still waits for acks
)

// lineReaderProps are the --property settings of the console producer,
// named as Kafka's LineMessageReader names them.
type lineReaderProps struct {
	parseKey       bool
	keySep         string
	parseHeaders   bool
	headersDelim   string
	headersSep     string
	headerKeySep   string
	ignoreError    bool
	nullMarker     string
	haveNullMarker bool
}

func parseReaderProps(items []string) (lineReaderProps, error) {
	p := lineReaderProps{keySep: "\t", headersDelim: "\t", headersSep: ",", headerKeySep: ":"}
	kv, err := keyValues("property", items)
	if err != nil {
		return p, err
	}
	for _, k := range sortedKeys(kv) {
		v := kv[k]
		switch k {
		case "parse.key":
			p.parseKey, err = parseBoolProp(k, v)
		case "key.separator":
			p.keySep = v
		case "parse.headers":
			p.parseHeaders, err = parseBoolProp(k, v)
		case "headers.delimiter":
			p.headersDelim = v
		case "headers.separator":
			p.headersSep = v
		case "headers.key.separator":
			p.headerKeySep = v
		case "ignore.error":
			p.ignoreError, err = parseBoolProp(k, v)
		case "null.marker":
			p.nullMarker, p.haveNullMarker = v, v != ""
		default:
			return p, usagef("unknown --property %q (known: parse.key, key.separator, parse.headers, headers.delimiter, headers.separator, headers.key.separator, ignore.error, null.marker)", k)
		}
		if err != nil {
			return p, err
		}
	}
	for name, v := range map[string]string{"key.separator": p.keySep, "headers.delimiter": p.headersDelim, "headers.separator": p.headersSep, "headers.key.separator": p.headerKeySep} {
		if v == "" {
			return p, usagef("--property %s must not be empty", name)
		}
	}
	return p, nil
}

func parseBoolProp(k, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, usagef("--property %s wants true or false, got %q", k, v)
	}
	return b, nil
}

// nullable turns the null marker into a nil slice.
func (p *lineReaderProps) nullable(s string) []byte {
	if p.haveNullMarker && s == p.nullMarker {
		return nil
	}
	return []byte(s)
}

// record turns one input line (without its line break) into a record.
// lineNo counts from 1, for error messages.
func (p *lineReaderProps) record(line string, lineNo int) (*kgo.Record, error) {
	r := &kgo.Record{}
	rest := line
	if p.parseHeaders {
		head, tail, ok := strings.Cut(rest, p.headersDelim)
		switch {
		case ok:
			rest = tail
			for _, pair := range strings.Split(head, p.headersSep) {
				k, v, ok := strings.Cut(pair, p.headerKeySep)
				if !ok {
					if !p.ignoreError {
						return nil, errorf("no header key separator %q in %q on line %d", p.headerKeySep, pair, lineNo)
					}
					r.Headers = append(r.Headers, kgo.RecordHeader{Key: pair})
					continue
				}
				if p.haveNullMarker && k == p.nullMarker {
					return nil, errorf("a header key on line %d is the null marker; header keys cannot be null", lineNo)
				}
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: p.nullable(v)})
			}
		case !p.ignoreError:
			return nil, errorf("no headers delimiter %q on line %d: %q", p.headersDelim, lineNo, line)
		}
	}
	if p.parseKey {
		k, v, ok := strings.Cut(rest, p.keySep)
		switch {
		case ok:
			r.Key, r.Value = p.nullable(k), p.nullable(v)
			return r, nil
		case !p.ignoreError:
			return nil, errorf("no key separator %q on line %d: %q", p.keySep, lineNo, line)
		}
	}
	r.Value = p.nullable(rest)
	return r, nil
}

// parseCodec maps --compression-codec to franz-go's codec.
func parseCodec(s string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usagef("--compression-codec must be none, gzip, snappy, lz4 or zstd, not %q", s)
}

// parseAcks maps --request-required-acks to franz-go's setting; idempotence
// needs acks=all, so it is on only then, as in Kafka's producer.
func parseAcks(s string) (kgo.Acks, bool, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return kgo.AllISRAcks(), true, nil
	case "1":
		return kgo.LeaderAck(), false, nil
	case "0":
		return kgo.NoAck(), false, nil
	}
	return kgo.Acks{}, false, usagef("--request-required-acks must be all, -1, 1 or 0, not %q", s)
}

// producerSummary is the JSON answer of console-producer.
type producerSummary struct {
	Topic        string `json:"topic"`
	Records      int64  `json:"records"`
	Acknowledged int64  `json:"acknowledged"`
	Failed       int64  `json:"failed"`
	FirstError   string `json:"first_error,omitempty"`
}

// inputLine is one line from stdin, or the error that ended the input.
type inputLine struct {
	text string
	err  error // io.EOF at the end
}

func runProducer(e *env, args []string) error {
	fs := newFlagSet(e, "send each line of standard input as a record (a Kafka client; works against Apache Kafka too)",
		"--topic TOPIC [--property parse.key=true --property key.separator=SEP] [--compression-codec CODEC] [--request-required-acks ACKS]")
	var (
		topic, codecName, acksName string
		props                      listFlag
	)
	fs.StringVar(&topic, "topic", "", "the `TOPIC` to produce to (required)")
	fs.Var(&props, "property", "a line reader setting as `key=value` (repeatable): parse.key, key.separator (default tab), parse.headers, headers.delimiter (tab), headers.separator (,), headers.key.separator (:), ignore.error, null.marker")
	fs.StringVar(&codecName, "compression-codec", "none", "compress batches with `CODEC`: none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&acksName, "request-required-acks", "all", "`ACKS` to wait for: all (-1), 1 or 0; all enables idempotence")
	fs.Var(stringAlias{&acksName}, "acks", "`ACKS`, the same as --request-required-acks")
	fs.Var(stringAlias{&fs.commandConfig}, "producer.config", "`FILE`, the same as --command-config (kafka-console-producer.sh's name)")
	if err := fs.parse(e, args); err != nil {
		return err
	}
	if topic == "" {
		return usagef("--topic is required")
	}
	rp, err := parseReaderProps(props)
	if err != nil {
		return err
	}
	codec, err := parseCodec(codecName)
	if err != nil {
		return err
	}
	acks, idempotent, err := parseAcks(acksName)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(codec),
		kgo.RequiredAcks(acks),
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(producerDeliveryTimeout),
	}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := newClient(fs, "console-producer", opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	// Records are not tied to ctx: an interrupt stops the reading, and what
	// was read is still delivered (for a bounded time), as Kafka's console
	// producer flushes on close.
	produceCtx := context.WithoutCancel(e.ctx)
	var (
		mu       sync.Mutex
		sum      = producerSummary{Topic: topic}
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			sum.Failed++
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		sum.Acknowledged++
	}

	lines := make(chan inputLine)
	stop := make(chan struct{})
	defer close(stop)
	go readLines(e.stdin, lines, stop)

	var readErr error
	interrupted := false
	lineNo := 0
read:
	for {
		select {
		case <-e.ctx.Done():
			// The usual end of an interactive session: deliver what was
			// read and exit as at the end of the input.
			interrupted = true
			break read
		case in := <-lines:
			if in.err != nil {
				if !errors.Is(in.err, io.EOF) {
					readErr = errorf("reading standard input: %w", in.err)
				}
				break read
			}
			lineNo++
			rec, err := rp.record(in.text, lineNo)
			if err != nil {
				readErr = err
				break read
			}
			mu.Lock()
			sum.Records++
			mu.Unlock()
			cl.Produce(produceCtx, rec, promise)
		}
	}

	flushCtx, cancel := context.WithTimeout(produceCtx, producerDeliveryTimeout+10*time.Second)
	if readErr != nil || interrupted {
		cancel()
		flushCtx, cancel = context.WithTimeout(produceCtx, producerInterruptFlush)
	}
	defer cancel()
	flushErr := cl.Flush(flushCtx)

	mu.Lock()
	defer mu.Unlock()
	if flushErr != nil {
		sum.Failed += sum.Records - sum.Acknowledged - sum.Failed
		if firstErr == nil {
			firstErr = flushErr
		}
	}
	if firstErr != nil {
		sum.FirstError = firstErr.Error()
	}
	if fs.json() {
		if err := writeJSON(e.stdout, sum); err != nil {
			return err
		}
	}
	switch {
	case readErr != nil && sum.Failed > 0:
		return errorf("%v; and %d of %d records were not acknowledged: %w", oneLine(readErr), sum.Failed, sum.Records, firstErr)
	case readErr != nil:
		return readErr
	case sum.Failed > 0:
		return errorf("%d of %d records were not acknowledged: %w", sum.Failed, sum.Records, firstErr)
	}
	return nil
}

// readLines sends each line of r (without "\n" or "\r\n") to out, then an
// inputLine with the error that ended the input (io.EOF at the end). It
// gives up when stop is closed.
func readLines(r io.Reader, out chan<- inputLine, stop <-chan struct{}) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		s, err := br.ReadString('\n')
		if len(s) > 0 && (err == nil || errors.Is(err, io.EOF)) {
			s = strings.TrimSuffix(s, "\n")
			s = strings.TrimSuffix(s, "\r")
			select {
			case out <- inputLine{text: s}:
			case <-stop:
				return
			}
		}
		if err != nil {
			select {
			case out <- inputLine{err: err}:
			case <-stop:
			}
			return
		}
	}
}

// stringAlias is a second flag name writing to the same string.
type stringAlias struct{ p *string }

func (a stringAlias) String() string {
	if a.p == nil {
		return ""
	}
	return *a.p
}

func (a stringAlias) Set(s string) error {
	*a.p = s
	return nil
}
