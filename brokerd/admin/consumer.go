package admin

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumerCommitTimeout bounds the final offset commit of a group consumer.
const consumerCommitTimeout = 30 * time.Second

// formatterProps are the --property settings of the console consumer,
// named as Kafka's DefaultMessageFormatter names them.
type formatterProps struct {
	printTimestamp, printKey, printValue bool
	printPartition, printOffset          bool
	printHeaders                         bool
	keySep, lineSep                      string
	headersSep, headerKeySep             string
	nullLiteral                          string
}

func parseFormatterProps(items []string) (formatterProps, error) {
	p := formatterProps{printValue: true, keySep: "\t", lineSep: "\n", headersSep: ",", headerKeySep: ":", nullLiteral: "null"}
	kv, err := keyValues("property", items)
	if err != nil {
		return p, err
	}
	bools := map[string]*bool{
		"print.timestamp": &p.printTimestamp, "print.key": &p.printKey, "print.value": &p.printValue,
		"print.partition": &p.printPartition, "print.offset": &p.printOffset, "print.headers": &p.printHeaders,
	}
	strs := map[string]*string{
		"key.separator": &p.keySep, "line.separator": &p.lineSep, "headers.separator": &p.headersSep,
		"headers.key.separator": &p.headerKeySep, "null.literal": &p.nullLiteral,
	}
	for _, k := range sortedKeys(kv) {
		if b, ok := bools[k]; ok {
			if *b, err = parseBoolProp(k, kv[k]); err != nil {
				return p, err
			}
			continue
		}
		if s, ok := strs[k]; ok {
			*s = kv[k]
			continue
		}
		return p, usagef("unknown --property %q (known: %s, %s)", k, strings.Join(sortedKeys(bools), ", "), strings.Join(sortedKeys(strs), ", "))
	}
	return p, nil
}

// format appends r as Kafka's default formatter prints it: the selected
// fields in the order timestamp, partition, offset, headers, key, value,
// separated by key.separator and ended by line.separator.
func (p *formatterProps) format(dst []byte, r *kgo.Record) []byte {
	var fields [][]byte
	if p.printTimestamp {
		fields = append(fields, fmt.Appendf(nil, "%s:%d", timestampType(r), r.Timestamp.UnixMilli()))
	}
	if p.printPartition {
		fields = append(fields, fmt.Appendf(nil, "Partition:%d", r.Partition))
	}
	if p.printOffset {
		fields = append(fields, fmt.Appendf(nil, "Offset:%d", r.Offset))
	}
	if p.printHeaders {
		if len(r.Headers) == 0 {
			fields = append(fields, []byte("NO_HEADERS"))
		} else {
			var h []byte
			for i, hd := range r.Headers {
				if i > 0 {
					h = append(h, p.headersSep...)
				}
				h = append(h, hd.Key...)
				h = append(h, p.headerKeySep...)
				h = p.appendNullable(h, hd.Value)
			}
			fields = append(fields, h)
		}
	}
	if p.printKey {
		fields = append(fields, p.appendNullable(nil, r.Key))
	}
	if p.printValue {
		fields = append(fields, p.appendNullable(nil, r.Value))
	}
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, p.keySep...)
		}
		dst = append(dst, f...)
	}
	return append(dst, p.lineSep...)
}

func (p *formatterProps) appendNullable(dst, b []byte) []byte {
	if b == nil {
		return append(dst, p.nullLiteral...)
	}
	return append(dst, b...)
}

func timestampType(r *kgo.Record) string {
	if r.Attrs.TimestampType() == 1 {
		return "LogAppendTime"
	}
	return "CreateTime"
}

// jsonRecord is one line of console-consumer's JSON output. Keys, values
// and header values are strings when they are valid UTF-8, otherwise they
// are given in the *_base64 field instead; null stays null.
type jsonRecord struct {
	Topic         string       `json:"topic"`
	Partition     int32        `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     int64        `json:"timestamp"`
	TimestampType string       `json:"timestamp_type"`
	Key           *string      `json:"key"`
	KeyBase64     string       `json:"key_base64,omitempty"`
	Value         *string      `json:"value"`
	ValueBase64   string       `json:"value_base64,omitempty"`
	Headers       []jsonHeader `json:"headers"`
}

// jsonHeader is one record header in jsonRecord.
type jsonHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 string  `json:"value_base64,omitempty"`
}

// textOrBase64 splits b into the string form (valid UTF-8) or base64.
func textOrBase64(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

func newJSONRecord(r *kgo.Record) jsonRecord {
	j := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UnixMilli(), TimestampType: timestampType(r), Headers: []jsonHeader{}}
	j.Key, j.KeyBase64 = textOrBase64(r.Key)
	j.Value, j.ValueBase64 = textOrBase64(r.Value)
	for _, h := range r.Headers {
		jh := jsonHeader{Key: h.Key}
		jh.Value, jh.ValueBase64 = textOrBase64(h.Value)
		j.Headers = append(j.Headers, jh)
	}
	return j
}

// consumerOpts is the parsed command line of console-consumer.
type consumerOpts struct {
	*flagSet
	topic          string
	group          string
	fromBeginning  bool
	maxMessages    int64
	partition      int
	offset         string
	timeoutMs      int
	isolationLevel string
	props          listFlag
}

func runConsumer(e *env, args []string) error {
	o := &consumerOpts{}
	o.flagSet = newFlagSet(e, "print the records of a topic, one per line (a Kafka client; works against Apache Kafka too)",
		"--topic TOPIC [--from-beginning] [--group GROUP] [--max-messages N] [--timeout-ms MS] [--property print.key=true]...",
		"--topic TOPIC --partition P [--offset earliest|latest|N] [--max-messages N] [--timeout-ms MS]")
	fs := o.flagSet
	fs.StringVar(&o.topic, "topic", "", "the `TOPIC` to consume (required)")
	fs.StringVar(&o.group, "group", "", "consume as a member of consumer group `GROUP` and commit the offsets of what was printed")
	fs.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the earliest offset (with --group: where the group has no committed offset) instead of the end")
	fs.Int64Var(&o.maxMessages, "max-messages", 0, "exit after printing `N` records (default: no limit)")
	fs.IntVar(&o.partition, "partition", -1, "consume only partition `P` (without a group)")
	fs.StringVar(&o.offset, "offset", "latest", "with --partition: where to start, `earliest|latest|OFFSET`")
	fs.IntVar(&o.timeoutMs, "timeout-ms", 0, "exit when no record arrived for this many `milliseconds` (default: wait forever)")
	fs.StringVar(&o.isolationLevel, "isolation-level", "read_uncommitted", "`LEVEL`: read_committed to skip records of aborted transactions, or read_uncommitted")
	fs.Var(stringAlias{&fs.commandConfig}, "consumer.config", "`FILE`, the same as --command-config (kafka-console-consumer.sh's name)")
	fs.Var(&o.props, "property", "a formatter setting as `key=value` (repeatable): print.key, print.value, print.timestamp, print.partition, print.offset, print.headers, key.separator (default tab), line.separator, headers.separator, headers.key.separator, null.literal")
	if err := fs.parse(e, args); err != nil {
		return err
	}
	props, err := parseFormatterProps(o.props)
	if err != nil {
		return err
	}
	kopts, err := o.clientOpts()
	if err != nil {
		return err
	}
	cl, err := newClient(fs, "console-consumer", kopts...)
	if err != nil {
		return err
	}
	n, err := o.consume(e, cl, &props)
	if o.group != "" {
		// Commit exactly what was printed, then leave the group.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), consumerCommitTimeout)
		cerr := cl.CommitMarkedOffsets(cctx)
		cancel()
		if cerr != nil && err == nil {
			err = errorf("commit offsets of group %q: %w", o.group, cerr)
		}
	}
	cl.Close()
	fmt.Fprintf(e.stderr, "Processed a total of %d messages\n", n)
	return err
}

func (o *consumerOpts) clientOpts() ([]kgo.Opt, error) {
	if o.topic == "" {
		return nil, usagef("--topic is required")
	}
	if o.maxMessages < 0 {
		return nil, usagef("--max-messages must not be negative")
	}
	if o.timeoutMs < 0 {
		return nil, usagef("--timeout-ms must not be negative")
	}
	var opts []kgo.Opt
	switch o.isolationLevel {
	case "read_uncommitted":
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	case "read_committed":
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	default:
		return nil, usagef("--isolation-level must be read_committed or read_uncommitted, not %q", o.isolationLevel)
	}
	start := kgo.NewOffset().AtEnd()
	if o.fromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	if o.given("offset") && !o.given("partition") {
		return nil, usagef("--offset needs --partition")
	}
	if o.given("partition") {
		if o.partition < 0 {
			return nil, usagef("--partition must not be negative")
		}
		if o.group != "" {
			return nil, usagef("--partition and --group cannot be used together")
		}
		if o.given("offset") && o.fromBeginning {
			return nil, usagef("--offset and --from-beginning cannot be used together")
		}
		switch o.offset {
		case "earliest":
			start = kgo.NewOffset().AtStart()
		case "latest":
			if !o.fromBeginning {
				start = kgo.NewOffset().AtEnd()
			}
		default:
			at, err := strconv.ParseInt(o.offset, 10, 64)
			if err != nil || at < 0 {
				return nil, usagef("--offset must be earliest, latest or an offset of at least 0, not %q", o.offset)
			}
			start = kgo.NewOffset().At(at)
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: {int32(o.partition): start}}))
		// An offset past either end starts over at the end, as Kafka's
		// auto.offset.reset=latest does.
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
		return opts, nil
	}
	opts = append(opts, kgo.ConsumeTopics(o.topic), kgo.ConsumeResetOffset(start))
	if o.group != "" {
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.AutoCommitMarks())
	}
	return opts, nil
}

// consume prints records until --max-messages, --timeout-ms, the end of
// ctx or a fatal error, and returns how many it printed. With a group,
// each printed record is marked for commit.
func (o *consumerOpts) consume(e *env, cl *kgo.Client, props *formatterProps) (int64, error) {
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	var enc *json.Encoder
	if o.json() {
		enc = json.NewEncoder(out)
	}
	var n int64
	var line []byte
	for o.maxMessages == 0 || n < o.maxMessages {
		pollCtx, cancel := e.ctx, context.CancelFunc(func() {})
		if o.timeoutMs > 0 {
			pollCtx, cancel = context.WithTimeout(e.ctx, time.Duration(o.timeoutMs)*time.Millisecond)
		}
		want := 0
		if o.maxMessages > 0 {
			want = int(min(o.maxMessages-n, 1<<30))
		}
		fetches := cl.PollRecords(pollCtx, want)
		timedOut := pollCtx.Err() != nil
		cancel()
		if e.ctx.Err() != nil {
			return n, out.Flush()
		}
		var fatal error
		fetches.EachError(func(topic string, partition int32, err error) {
			var loss *kgo.ErrDataLoss
			switch {
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrClientClosed):
			case errors.As(err, &loss):
				fmt.Fprintf(e.stderr, "%s: warning: %v\n", e.name, err)
			case fatal == nil:
				if partition >= 0 && topic != "" {
					fatal = errorf("consume %s partition %d: %w", topic, partition, err)
				} else {
					fatal = errorf("consume: %w", err)
				}
			}
		})
		recs := fetches.Records()
		for _, r := range recs {
			if o.maxMessages > 0 && n >= o.maxMessages {
				break
			}
			if enc != nil {
				if err := enc.Encode(newJSONRecord(r)); err != nil {
					return n, errorf("writing output: %w", err)
				}
			} else {
				line = props.format(line[:0], r)
				if _, err := out.Write(line); err != nil {
					return n, errorf("writing output: %w", err)
				}
			}
			n++
			if o.group != "" {
				cl.MarkCommitRecords(r)
			}
		}
		if err := out.Flush(); err != nil {
			return n, errorf("writing output: %w", err)
		}
		if fatal != nil {
			return n, fatal
		}
		if len(recs) == 0 && timedOut {
			return n, nil
		}
	}
	return n, nil
}
