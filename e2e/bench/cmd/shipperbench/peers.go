package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"logpipe/internal/devstack"
)

// The peers: the programs that ship the same log lines to the same broker.
// rsyslog runs twice: making the shipper's event (JSON with the file's
// path, the line's offset and an id), and sending the bare line, which is
// the least rsyslog can do and so its floor.
const (
	peerShipper    = "shipper"
	peerRsyslog    = "rsyslog"
	peerRsyslogRaw = "rsyslog-raw"
)

// job is one peer's shipping run: what it reads, where it sends it, and
// a fresh folder of its own for its configuration, state and log.
type job struct {
	paths   string // a file, or a glob for the tailed files
	addr    string // the broker, host:port
	topic   string
	dir     string
	profile string // the shipper's CPU profile goes here when not ""
}

// peer is a running peer process.
type peer struct {
	proc *devstack.Process
	// ready polls until the peer has started and can read.
	ready func(ctx context.Context) error
	// after runs once the run is measured, before the peer is stopped
	// (the shipper's profile is fetched then).
	after func()
}

// unprivileged is the user the peers run as when the benchmark runs as
// root: neither needs any privilege, and both run the same way.
const unprivileged = 65534 // nobody

// command returns the command line for a peer binary, wrapped in setpriv
// to drop root.
func command(bin string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("setpriv", append([]string{"--reuid=" + strconv.Itoa(unprivileged),
			"--regid=" + strconv.Itoa(unprivileged), "--clear-groups", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

// ownFolder makes dir writable by the user the peers run as.
func ownFolder(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if err := os.Chown(dir, unprivileged, unprivileged); err != nil {
		return fmt.Errorf("shipperbench: %w", err)
	}
	return nil
}

// startPeer starts the named peer on job j.
func startPeer(name string, o *options, j job) (*peer, error) {
	if err := ownFolder(j.dir); err != nil {
		return nil, err
	}
	switch name {
	case peerShipper:
		return startShipper(o, j)
	case peerRsyslog:
		return startRsyslog(j, rsyslogEvent)
	case peerRsyslogRaw:
		return startRsyslog(j, rsyslogRaw)
	}
	return nil, fmt.Errorf("shipperbench: unknown peer %q", name)
}

// shipperConfig is the shipper's configuration for a run: the defaults
// except compression (none, like rsyslog's) and what names the files,
// the broker and the folders.
const shipperConfig = `filebeat.inputs:
- type: log
  paths: [%q]
  tags: ["access"]
output.kafka:
  hosts: [%q]
  topic: %q
  compression: none
path.data: %q
http.enabled: true
http.port: %d
http.pprof: %t
`

// startShipper runs the shipper binary on j.
func startShipper(o *options, j job) (*peer, error) {
	port, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(j.dir, "shipper.yml")
	text := fmt.Sprintf(shipperConfig, j.paths, j.addr, j.topic, filepath.Join(j.dir, "data"), port, j.profile != "")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("shipperbench: %w", err)
	}
	args := []string{"-c", cfg}
	for _, kv := range o.shipperSet {
		args = append(args, "-E", kv)
	}
	cmd := command(o.shipperBin, args...)
	if len(o.shipperEnv) > 0 {
		cmd.Env = append(os.Environ(), o.shipperEnv...)
	}
	proc, err := devstack.StartProcess("shipper", cmd, filepath.Join(j.dir, "shipper.log"))
	if err != nil {
		return nil, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	p := &peer{proc: proc, after: func() {}}
	p.ready = func(ctx context.Context) error {
		return devstack.WaitFor(ctx, 20*time.Millisecond, proc, func(ctx context.Context) error {
			return get(ctx, base+"/readyz", io.Discard)
		})
	}
	if j.profile != "" {
		// A CPU profile of the busy part of the run, then the heap as it
		// is right after (in use at the last collection, and allocated
		// since the start), fetched while the run goes on.
		done := make(chan error, 1)
		heap := strings.TrimSuffix(j.profile, ".pprof") + ".heap.pprof"
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := devstack.WaitFor(ctx, 5*time.Millisecond, proc, func(ctx context.Context) error {
				return get(ctx, base+"/healthz", io.Discard)
			}); err != nil {
				done <- err
				return
			}
			done <- errors.Join(
				fetch(ctx, base+"/debug/pprof/profile?seconds="+strconv.Itoa(o.profileSeconds), j.profile),
				fetch(ctx, base+"/debug/pprof/heap", heap))
		}()
		p.after = func() {
			if err := <-done; err != nil {
				logf("profiles failed: %v", err)
				return
			}
			logf("CPU and heap profiles of the shipper written to %s and %s", j.profile, heap)
		}
	}
	return p, nil
}

// fetch gets url into the file at path.
func fetch(ctx context.Context, url, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = get(ctx, url, f)
	return errors.Join(err, f.Close())
}

// get fetches url into w; a status other than 200 is an error.
func get(ctx context.Context, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// rsyslogConfig is rsyslog's configuration for a run: imfile reads the
// files (inotify mode, from their start; the file name and offset as
// metadata when the event needs them), a ruleset (rsyslogEvent or
// rsyslogRaw) makes each record, and omkafka produces it with the
// idempotent producer and acks=all, no compression. Nothing else is
// loaded: no imuxsock, no imklog, no system log.
const rsyslogConfig = `global(workDirectory=%q)
module(load="imfile" mode="inotify")
module(load="omkafka")
%s
input(type="imfile" file=%q tag="access" ruleset="ship" addMetadata="%s")
`

// omkafkaAction is the output of both rulesets; the template is filled in.
// resubmitOnFailure makes omkafka send again what librdkafka refused; left
// off (rsyslog's default), a full librdkafka queue ("Local: Queue full")
// drops lines, which a trial run of this benchmark saw happen.
const omkafkaAction = `action(type="omkafka" broker=[%q] topic=%q template="%s"
         confParam=["compression.codec=none", "enable.idempotence=true"]
         topicConfParam=["acks=all"] resubmitOnFailure="on")`

// rsyslogEvent makes the shipper's event: a 64-bit hash of file name and
// offset (fmhash) stands for the event id, and a list template writes the
// JSON with the file name and offset imfile adds as metadata.
const rsyslogEvent = `module(load="fmhash")
template(name="event" type="list") {
  constant(value="{\"@timestamp\":\"")
  property(name="timegenerated" dateFormat="rfc3339" date.inUTC="on")
  constant(value="\",\"message\":\"")
  property(name="msg" format="json")
  constant(value="\",\"tags\":[\"access\"],\"event\":{\"id\":\"")
  property(name="$!id")
  constant(value="\"},\"log\":{\"file\":{\"path\":\"")
  property(name="$!metadata!filename" format="json")
  constant(value="\"},\"offset\":")
  property(name="$!metadata!fileoffset")
  constant(value="},\"input\":{\"type\":\"log\"},\"host\":{\"name\":\"")
  property(name="$myhostname" format="json")
  constant(value="\"},\"agent\":{\"type\":\"rsyslog\"}}")
}
ruleset(name="ship") {
  set $!id = hash64($!metadata!filename & ":" & $!metadata!fileoffset);
  %s
}`

// rsyslogRaw sends the line as it is.
const rsyslogRaw = `template(name="raw" type="string" string="%%msg%%")
ruleset(name="ship") {
  %s
}`

// startRsyslog runs rsyslogd in the foreground on j, with its own
// configuration, work folder and pid file.
func startRsyslog(j job, ruleset string) (*peer, error) {
	work := filepath.Join(j.dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		return nil, fmt.Errorf("shipperbench: %w", err)
	}
	if err := ownFolder(work); err != nil {
		return nil, err
	}
	cfg := filepath.Join(j.dir, "rsyslog.conf")
	template, metadata := "event", "on"
	if ruleset == rsyslogRaw {
		template, metadata = "raw", "off"
	}
	rules := fmt.Sprintf(ruleset, fmt.Sprintf(omkafkaAction, j.addr, j.topic, template))
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(rsyslogConfig, work, rules, j.paths, metadata)), 0o644); err != nil {
		return nil, fmt.Errorf("shipperbench: %w", err)
	}
	pidFile := filepath.Join(j.dir, "rsyslogd.pid")
	proc, err := devstack.StartProcess("rsyslogd", command(rsyslogd, "-n", "-f", cfg, "-i", pidFile), filepath.Join(j.dir, "rsyslogd.log"))
	if err != nil {
		return nil, err
	}
	p := &peer{proc: proc, after: func() {}}
	p.ready = func(ctx context.Context) error {
		// rsyslogd writes its pid file once its configuration is loaded
		// and its inputs are started.
		return devstack.WaitFor(ctx, 20*time.Millisecond, proc, func(context.Context) error {
			b, err := os.ReadFile(pidFile)
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) != strconv.Itoa(proc.Pid()) {
				return fmt.Errorf("pid file holds %q", b)
			}
			return nil
		})
	}
	return p, nil
}

// rsyslogd is Debian's rsyslog daemon.
const rsyslogd = "/usr/sbin/rsyslogd"

// rsyslogVersion returns rsyslog's version, as `rsyslogd -v` says it
// ("8.2302.0 (aka 2023.02)").
func rsyslogVersion() string {
	v := strings.Join(strings.Fields(firstLine(commandOutput(rsyslogd, "-v"))), " ")
	v = strings.TrimPrefix(v, "rsyslogd ")
	return strings.TrimSuffix(v, " compiled with:")
}
