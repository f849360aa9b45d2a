// Package admin holds brokerd's administration subcommands: topics,
// console-producer, console-consumer, consumer-groups, acls and users. Each is a plain
// Kafka client (franz-go), so it works against Apache Kafka as well as
// against brokerd, and its flags are named as Kafka's own command-line
// tools name them (kafka-topics.sh, kafka-console-producer.sh,
// kafka-console-consumer.sh, kafka-consumer-groups.sh, kafka-acls.sh).
//
// Every subcommand takes --bootstrap-server (default 127.0.0.1:9092),
// --command-config (a Java properties file of Kafka's client security
// settings, as Kafka's tools take it: TLS and SASL) and --output
// text|json: text is laid out for people in aligned columns, json is one
// document (or, for console-consumer, one document per record) for
// scripts. A failure is reported as one line on stderr and a non-zero exit
// code: 1 when the work failed, 2 when the command line was wrong.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Exit codes returned by Run.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line was wrong
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

// commands lists the subcommands in the order --help shows them.
var commands = []command{
	{"topics", "create, list, describe, alter and delete topics (like kafka-topics.sh)", runTopics},
	{"console-producer", "produce lines from stdin as records (like kafka-console-producer.sh)", runProducer},
	{"console-consumer", "print records of a topic, one per line (like kafka-console-consumer.sh)", runConsumer},
	{"consumer-groups", "list, describe, reset and delete consumer groups (like kafka-consumer-groups.sh)", runGroups},
	{"acls", "add, remove and list ACLs (like kafka-acls.sh)", runACLs},
	{"users", "add, delete and list SCRAM users (like kafka-configs.sh --entity-type users)", runUsers},
}

// Commands returns one "name  description" line per subcommand, for the
// brokerd binary's --help.
func Commands() []string {
	out := make([]string, 0, len(commands))
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		out = append(out, fmt.Sprintf("%-*s  %s", width, c.name, c.summary))
	}
	return out
}

// IsCommand reports whether name is one of the subcommands Run knows.
func IsCommand(name string) bool {
	for _, c := range commands {
		if c.name == name {
			return true
		}
	}
	return false
}

// Run runs the subcommand named by args[0] with the rest of args as its
// flags, reading standard input from os.Stdin, and returns the process
// exit code: 0 on success, 1 when the work failed, 2 for a command-line
// mistake. Results go to stdout; errors are one line on stderr. Cancelling
// ctx (on SIGINT, say) stops a console consumer or producer cleanly.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunWith(ctx, args, os.Stdin, stdout, stderr)
}

// RunWith is Run with standard input given as stdin, which only
// console-producer reads. If ctx is cancelled while a read from stdin is
// blocked, RunWith returns without waiting for it; the goroutine doing the
// read ends when stdin next returns.
func RunWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "brokerd: no admin command given; one of: "+strings.Join(commandNames(), ", "))
		return exitUsage
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "brokerd: unknown admin command %q; one of: %s\n", args[0], strings.Join(commandNames(), ", "))
		return exitUsage
	}
	e := &env{ctx: ctx, name: "brokerd " + cmd.name, stdin: stdin, stdout: stdout, stderr: stderr}
	err := cmd.run(e, args[1:])
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	}
	fmt.Fprintf(stderr, "%s: %s\n", e.name, oneLine(err))
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

func commandNames() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return names
}

// oneLine renders err for the single stderr line: without the package
// prefix every error of this package carries (the line already starts
// with the command's name) and with line breaks folded.
func oneLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "admin: ")
	s = strings.ReplaceAll(s, ": admin: ", ": ")
	s = strings.ReplaceAll(s, "\r", "")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// env is what a running subcommand talks to.
type env struct {
	ctx    context.Context
	name   string // "brokerd topics"
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// errHelp reports that --help was answered; Run exits 0.
var errHelp = errors.New("admin: help requested")

// usageError is a mistake on the command line; Run exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return "admin: " + e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("admin: "+format, args...)
}

// brokerError is a Kafka error code from a response, with the broker's
// own message when it sent one.
type brokerError struct {
	err error // usually a *kerr.Error
	msg string
}

func (e *brokerError) Error() string {
	if e.msg == "" {
		return e.err.Error()
	}
	var ke *kerr.Error
	if errors.As(e.err, &ke) {
		return ke.Message + ": " + e.msg
	}
	return e.err.Error() + ": " + e.msg
}

func (e *brokerError) Unwrap() error { return e.err }

// withMessage joins a response's error and error message; nil stays nil.
func withMessage(err error, msg string) error {
	if err == nil {
		return nil
	}
	return &brokerError{err: err, msg: msg}
}

// flagSet is a subcommand's flags: the shared --bootstrap-server and
// --output plus its own. It never prints on its own; Run prints errors.
type flagSet struct {
	*flag.FlagSet
	synopsis  []string // usage lines without the command name
	about     string
	bootstrap string
	output    string
	// commandConfig names the --command-config file; security is what
	// it says, read by parse.
	commandConfig string
	security      *commandConfig
}

func newFlagSet(e *env, about string, synopsis ...string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(e.name, flag.ContinueOnError), synopsis: synopsis, about: about}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&fs.bootstrap, "bootstrap-server", "127.0.0.1:9092", "the brokers to connect to, as `host:port[,host:port...]`")
	fs.StringVar(&fs.output, "output", "text", "`FORMAT` of the output: text (for people) or json (for scripts)")
	fs.StringVar(&fs.commandConfig, "command-config", "", "a Java properties `FILE` with the client's security settings, as Kafka's tools take it: security.protocol, ssl.truststore.*, ssl.keystore.* (PEM), ssl.endpoint.identification.algorithm, sasl.mechanism, sasl.jaas.config")
	return fs
}

// parse parses args; after --help it prints the help on e.stdout and
// returns errHelp.
func (fs *flagSet) parse(e *env, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.printHelp(e)
			return errHelp
		}
		return usagef("%s (see --help)", strings.ReplaceAll(err.Error(), " -", " --"))
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if fs.output != "text" && fs.output != "json" {
		return usagef("--output must be text or json, not %q", fs.output)
	}
	if len(fs.seeds()) == 0 {
		return usagef("--bootstrap-server is empty")
	}
	if fs.commandConfig != "" {
		sec, err := loadCommandConfig(fs.commandConfig)
		if err != nil {
			return err
		}
		fs.security = sec
	}
	return nil
}

// given reports whether the flag was set on the command line.
func (fs *flagSet) given(name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// seeds splits --bootstrap-server.
func (fs *flagSet) seeds() []string {
	var out []string
	for _, s := range strings.Split(fs.bootstrap, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (fs *flagSet) json() bool { return fs.output == "json" }

func (fs *flagSet) printHelp(e *env) {
	w := e.stdout
	fmt.Fprintf(w, "%s: %s\n\nUsage:\n", e.name, fs.about)
	for _, s := range fs.synopsis {
		fmt.Fprintf(w, "  %s %s\n", e.name, s)
	}
	fmt.Fprint(w, "\nOptions:\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "      %s", usage)
		if isZeroDefault(f) {
			fmt.Fprintln(w)
		} else {
			fmt.Fprintf(w, " (default %s)\n", f.DefValue)
		}
	})
}

func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "-1", "false", "[]":
		return true
	}
	return false
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// keyValues parses repeated key=value flags (--config, --property) into a
// map, refusing a missing '=' or an empty key.
func keyValues(flagName string, items []string) (map[string]string, error) {
	out := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--%s wants key=value, got %q", flagName, it)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

// newClient connects a franz-go client to the seeds of fs, with the TLS
// and SASL settings of its --command-config.
func newClient(fs *flagSet, clientID string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(fs.seeds()...), kgo.ClientID(clientID)}
	if fs.security != nil {
		sec, err := fs.security.opts()
		if err != nil {
			return nil, err
		}
		base = append(base, sec...)
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, errorf("%w", err)
	}
	return cl, nil
}

// newAdmin returns an admin client of the bootstrap servers and a context
// that ends after timeoutMs; done releases both.
func newAdmin(e *env, fs *flagSet, clientID string, timeoutMs int) (adm *kadm.Client, ctx context.Context, done func(), err error) {
	cl, err := newClient(fs, clientID)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(e.ctx, time.Duration(timeoutMs)*time.Millisecond)
	return kadm.NewClient(cl), ctx, func() { cancel(); cl.Close() }, nil
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return errorf("writing output: %w", err)
	}
	return nil
}

// table writes rows as aligned columns separated by at least two spaces,
// the way Kafka's tools lay out their tables.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return errorf("writing output: %w", err)
	}
	return nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// joinInt32s renders ids as "1,2,3".
func joinInt32s(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

// retryBackoff is the pause between attempts of a request that failed
// with a retriable error.
const retryBackoff = 250 * time.Millisecond

// retriable reports whether err is a Kafka error that goes away by itself
// (a coordinator that is loading or moving, a leader election), also
// inside kadm's per-broker ShardErrors.
func retriable(err error) bool {
	if err == nil {
		return false
	}
	var se *kadm.ShardErrors
	if errors.As(err, &se) && len(se.Errs) > 0 {
		for _, e := range se.Errs {
			if !retriable(e.Err) {
				return false
			}
		}
		return true
	}
	var ke *kerr.Error
	return errors.As(err, &ke) && ke.Retriable
}

// retry calls fn until it returns nil or an error that is not retriable,
// or ctx ends; it returns fn's last error. Kafka's own admin client
// retries the same way until its default.api.timeout.ms.
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if !retriable(err) {
			return err
		}
		t := time.NewTimer(retryBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
