package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"golang.org/x/crypto/bcrypt"

	"logpipe/brokerd/sasl"
)

// usersOpts is the parsed command line of `brokerd users`.
type usersOpts struct {
	*flagSet
	action     string
	user       string
	mechanisms listFlag
	password   string
	iterations int
	timeoutMs  int
	hash       string
}

var userActions = []string{"add", "delete", "list", "plain-hash"}

// valueFlags are the flags of `brokerd users` that take a value, so that
// a value is never taken for the action.
var valueFlags = []string{"--user", "-user", "--mechanism", "-mechanism", "--password", "-password", "--iterations", "-iterations", "--bootstrap-server", "-bootstrap-server", "--output", "-output", "--timeout", "-timeout", "--command-config", "-command-config", "--hash", "-hash"}

// takeAction removes the action (add, delete, list or plain-hash) from args.
func takeAction(args []string) (string, []string) {
	for i, a := range args {
		if i > 0 && slices.Contains(valueFlags, args[i-1]) {
			continue
		}
		if slices.Contains(userActions, a) {
			return a, slices.Delete(slices.Clone(args), i, i+1)
		}
	}
	return "", args
}

func runUsers(e *env, args []string) error {
	o := &usersOpts{}
	o.flagSet = newFlagSet(e, "add, delete and list SCRAM users (AlterUserScramCredentials, DescribeUserScramCredentials; works against Apache Kafka too)",
		"add --user NAME --password PASSWORD [--mechanism SCRAM-SHA-256|SCRAM-SHA-512]... [--iterations N]",
		"delete --user NAME [--mechanism SCRAM-SHA-256|SCRAM-SHA-512]...",
		"list [--user NAME]",
		"plain-hash --user NAME --password PASSWORD [--hash bcrypt|argon2id]    (prints a line of sasl.plain.users.file; contacts no broker)",
	)
	fs := o.flagSet
	fs.StringVar(&o.user, "user", "", "the user's `NAME`")
	fs.Var(&o.mechanisms, "mechanism", "`MECHANISM`, SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default both)")
	fs.StringVar(&o.password, "password", "", "with add: the user's `PASSWORD`; the broker keeps only a salted, iterated hash of it")
	fs.IntVar(&o.iterations, "iterations", 8192, "with add: the hash's iteration `COUNT` (4096 to 16384)")
	fs.IntVar(&o.timeoutMs, "timeout", 30000, "give up after this many `milliseconds`")
	fs.StringVar(&o.hash, "hash", "bcrypt", "with plain-hash: the `ALGORITHM`, bcrypt (cost 10) or argon2id (64 MiB, 3 passes, 4 lanes)")
	o.action, args = takeAction(args)
	if err := fs.parse(e, args); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	if o.action == "plain-hash" {
		return o.plainHash(e)
	}
	adm, ctx, done, err := newAdmin(e, fs, "brokerd-users", o.timeoutMs)
	if err != nil {
		return err
	}
	defer done()
	if o.action == "list" {
		return o.list(ctx, e, adm)
	}
	// One request per mechanism: Kafka refuses a request that changes a
	// user twice.
	var missing error
	for _, m := range o.mechs() {
		var dels []kadm.DeleteSCRAM
		var ups []kadm.UpsertSCRAM
		if o.action == "add" {
			ups = []kadm.UpsertSCRAM{{User: o.user, Mechanism: m, Iterations: int32(o.iterations), Password: o.password}}
		} else {
			dels = []kadm.DeleteSCRAM{{User: o.user, Mechanism: m}}
		}
		if err := o.alter(ctx, adm, dels, ups); err != nil {
			if o.action == "delete" && len(o.mechanisms) == 0 && errors.Is(err, kerr.ResourceNotFound) && missing == nil {
				missing = err // deleting both: the user may have one only
				continue
			}
			return err
		}
	}
	result := map[string]string{"add": "added", "delete": "deleted"}[o.action]
	if o.json() {
		return writeJSON(e.stdout, map[string]string{"user": o.user, "result": result})
	}
	_, err = e.stdout.Write([]byte("User " + o.user + " " + result + ".\n"))
	return err
}

func (o *usersOpts) check() error {
	switch {
	case o.action == "":
		return usagef("say add, delete, list or plain-hash (see --help)")
	case o.action != "list" && o.user == "":
		return usagef("%s needs --user", o.action)
	case (o.action == "add" || o.action == "plain-hash") && o.password == "":
		return usagef("%s needs --password", o.action)
	case o.action != "add" && o.action != "plain-hash" && o.given("password"):
		return usagef("--password goes with add and plain-hash only")
	case (o.action == "list" || o.action == "plain-hash") && len(o.mechanisms) > 0:
		return usagef("--mechanism does not go with %s", o.action)
	case o.action == "plain-hash" && strings.ContainsAny(o.user, ":\"\n\r"):
		return usagef("plain-hash: a PLAIN user name cannot hold ':', '\"' or a line break")
	case o.given("hash") && o.action != "plain-hash":
		return usagef("--hash goes with plain-hash only")
	case o.hash != "bcrypt" && o.hash != "argon2id":
		return usagef("--hash must be bcrypt or argon2id, not %q", o.hash)
	case o.iterations < 4096 || o.iterations > 16384:
		return usagef("--iterations must be between 4096 and 16384, got %d", o.iterations)
	}
	for _, m := range o.mechanisms {
		if parseMech(m) == 0 {
			return usagef("--mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512, not %q", m)
		}
	}
	return nil
}

// parseMech returns the mechanism named s, 0 for another name.
func parseMech(s string) kadm.ScramMechanism {
	switch strings.ToUpper(s) {
	case "SCRAM-SHA-256":
		return kadm.ScramSha256
	case "SCRAM-SHA-512":
		return kadm.ScramSha512
	}
	return 0
}

// mechs returns the mechanisms given, or both.
func (o *usersOpts) mechs() []kadm.ScramMechanism {
	if len(o.mechanisms) == 0 {
		return []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512}
	}
	var out []kadm.ScramMechanism
	for _, m := range o.mechanisms {
		out = append(out, parseMech(m))
	}
	return out
}

func (o *usersOpts) alter(ctx context.Context, adm *kadm.Client, dels []kadm.DeleteSCRAM, ups []kadm.UpsertSCRAM) error {
	res, err := adm.AlterUserSCRAMs(ctx, dels, ups)
	if err != nil {
		return errorf("%w", err)
	}
	r := res[o.user]
	if err := withMessage(r.Err, r.ErrMessage); err != nil {
		return errorf("user %s: %w", o.user, err)
	}
	return nil
}

// plainHash prints the user's line of brokerd's sasl.plain.users.file,
// the bcrypt or argon2id hash of the password, without contacting a
// broker.
func (o *usersOpts) plainHash(e *env) error {
	var hash []byte
	var err error
	if o.hash == "argon2id" {
		hash = []byte(sasl.NewArgon2idHash([]byte(o.password)))
	} else if hash, err = bcrypt.GenerateFromPassword([]byte(o.password), bcrypt.DefaultCost); err != nil {
		return errorf("plain-hash: %w", err)
	}
	if o.json() {
		return writeJSON(e.stdout, map[string]string{"user": o.user, "hash": string(hash)})
	}
	_, err = fmt.Fprintf(e.stdout, "%s: %q\n", o.user, hash)
	return err
}

// userRow is one credential in the output of list.
type userRow struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

func (o *usersOpts) list(ctx context.Context, e *env, adm *kadm.Client) error {
	var names []string
	if o.user != "" {
		names = []string{o.user}
	}
	res, err := adm.DescribeUserSCRAMs(ctx, names...)
	if err != nil {
		return errorf("%w", err)
	}
	rows := []userRow{}
	for _, user := range sortedKeys(res) {
		r := res[user]
		if err := withMessage(r.Err, r.ErrMessage); err != nil {
			return errorf("user %s: %w", user, err)
		}
		for _, c := range r.CredInfos {
			rows = append(rows, userRow{User: user, Mechanism: c.Mechanism.String(), Iterations: c.Iterations})
		}
	}
	if o.json() {
		return writeJSON(e.stdout, rows)
	}
	t := newTable(e.stdout, "USER", "MECHANISM", "ITERATIONS")
	for _, r := range rows {
		t.row(r.User, r.Mechanism, strconv.Itoa(int(r.Iterations)))
	}
	return t.flush()
}
