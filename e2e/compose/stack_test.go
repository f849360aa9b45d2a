package compose_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"logpipe/indexer/setup"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// How long the stack may take to do something: two shared cores run a
// JVM, three brokers and the Go programs.
const (
	upTime     = 6 * time.Minute
	settleTime = 3 * time.Minute
)

// stackFiles are the compose files the test runs: Kibana cannot be had on
// this machine in any form, so the stack runs without it, as README.md
// tells users without Kibana to. setup's Kibana part (the data views) is
// tested against a fake of Kibana's API in indexer/setup.
var stackFiles = []string{"docker-compose.yml", "deploy/compose/without-kibana.yml"}

// The test's own requests during the kills: one every sendEvery, and
// this many between one step and the next.
const (
	sendEvery = 100 * time.Millisecond
	sendStep  = 100
)

// TestComposeStack runs docker-compose.yml with the override that leaves
// Kibana out, with docker-compose 1.29 on a real Docker engine: every
// service it starts healthy, the traffic generator's lines in both
// indices, then the test's own requests, sent at a steady pace, counted
// exactly across a kill -9 of a broker and of the indexer in the middle
// of them, and across down and up.
func TestComposeStack(t *testing.T) {
	s, p, ports := upStack(t, "logpipe-e2e", stackFiles, nil)

	for _, c := range []struct {
		service string
		port    int
		want    int
	}{{"httpd", 80, ports[0]}, {"elasticsearch", 9200, ports[1]}} {
		if got, want := strings.TrimSpace(s.must("port", c.service, fmt.Sprint(c.port))), fmt.Sprintf("127.0.0.1:%d", c.want); got != want {
			t.Errorf("%s's port %d is published on %s, want %s", c.service, c.port, got, want)
		}
	}
	es := &esClient{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	site := fmt.Sprintf("http://127.0.0.1:%d", ports[0])

	s.checkTopic()
	s.checkSetup(es)
	checkGeneratorTraffic(t, es)

	// The test's own requests, so that it knows every line to expect, go
	// on at a steady pace beside the traffic generator's while the broker
	// leading the partition that holds the most records and the indexer
	// are killed, stay down for sendStep requests and are started again.
	// The generator is stopped before the test's requests end, so that
	// its last line is in the logs before the check reads them.
	snd := startSending(t, site, "a")
	snd.waitSent(sendStep)
	victim := s.busyLeader()
	ids := []string{s.container(victim), s.container("indexer")}
	// The indexer is a static member of its group, named by its
	// container's hostname; started again, it takes the dead member's
	// place rather than joining beside it.
	hostname, err := docker(t.Context(), t, nil, "inspect", "--format", "{{.Config.Hostname}}", ids[1])
	if err != nil {
		t.Fatal(err)
	}
	hostname = strings.TrimSpace(hostname)
	before := s.indexerMember(hostname)
	for _, id := range ids {
		if _, err := docker(t.Context(), t, nil, "kill", id); err != nil {
			t.Fatal(err)
		}
	}
	killedAt := snd.count()
	t.Logf("killed %s and indexer (SIGKILL) after %d requests", victim, killedAt)
	for _, id := range ids {
		if st := inspectState(t, id); st.Status != "exited" || st.ExitCode != 137 {
			t.Fatalf("container %s after docker kill: got %s (exit code %d), want exited with 137", id, st.Status, st.ExitCode)
		}
	}
	snd.waitSent(killedAt + sendStep)
	s.must("start", victim, "indexer")
	startedAt := snd.count()
	t.Logf("started %s and indexer again after %d requests", victim, startedAt)
	snd.waitSent(startedAt + sendStep)
	s.must("stop", "traffic")
	snd.waitSent(snd.count() + sendStep/2)
	sent := snd.finish()
	t.Logf("the test's requests: %d", len(sent))
	s.waitHealthy(p, slices.DeleteFunc(p.ServiceNames(), func(name string) bool { return name == "traffic" }))
	if after := s.indexerMember(hostname); after == before {
		t.Errorf("the group indexer still names the killed member %s", before)
	}
	s.checkExact(es, sent)
	s.waitFullISR()

	// down keeps the volumes; up again must go on from where it stopped:
	// the shipper from its registry, the indexer from its committed
	// offsets, without losing or repeating a line. The generator runs
	// again until every service is healthy; the test's requests after it
	// stopped show that new lines are still indexed.
	start := time.Now()
	s.must("down", "-t", "60")
	s.must("up", "-d")
	s.waitHealthy(p, p.ServiceNames())
	t.Logf("docker-compose down, then up until every service was healthy: %v", time.Since(start).Round(100*time.Millisecond))
	s.must("stop", "traffic")
	snd = startSending(t, site, "b")
	snd.waitSent(sendStep / 2)
	sent = append(sent, snd.finish()...)
	s.checkExact(es, sent)
}

// upStack builds the images of the compose files (relative to the
// repository's root) and runs `up -d` as a project of its own, named
// after prefix, with free ports for httpd, Elasticsearch and Kibana and
// the variables vars, then waits until every service it started is
// healthy and each one-shot has exited with 0. `down -v` removes the
// project when the test ends, after printing the containers' output if
// the test failed.
func upStack(t *testing.T, prefix string, files []string, vars map[string]string) (*stack, *types.Project, []int) {
	t.Helper()
	startDocker(t)
	standins(t)

	ports := make([]int, 3)
	for i := range ports {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	s := &stack{
		t:       t,
		root:    repoRoot(t),
		project: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().Unix()),
		files:   files,
		vars:    testVars(ports[0], ports[1], ports[2]),
	}
	maps.Copy(s.vars, vars)
	p := loadProject(t, s.vars, s.files...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the containers' last output:\n%s", s.logs())
		}
		if _, err := s.run("down", "-v", "--remove-orphans", "-t", "30"); err != nil {
			t.Errorf("removing the stack: %v", err)
		}
	})

	// Build each image the stack builds once (several services share the
	// logpipe image); the layer cache makes this quick when nothing changed.
	var builds []string
	built := map[string]bool{}
	for _, name := range p.ServiceNames() {
		svc := service(t, p, name)
		if svc.Build != nil && !built[svc.Image] {
			built[svc.Image] = true
			builds = append(builds, name)
		}
	}
	start := time.Now()
	s.must(append([]string{"build"}, builds...)...)
	t.Logf("docker-compose build %v: %v", builds, time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	s.must("up", "-d")
	s.waitHealthy(p, p.ServiceNames())
	t.Logf("docker-compose up until every service was healthy: %v", time.Since(start).Round(100*time.Millisecond))
	for _, name := range p.DisabledServiceNames() {
		if id := s.container(name); id != "" {
			t.Errorf("%s, disabled by the override, has the container %s", name, id)
		}
	}
	return s, p, ports
}

// containerState is what docker inspect says of a container's state.
type containerState struct {
	Status   string
	ExitCode int
	Health   *struct{ Status string }
}

func inspectState(t *testing.T, id string) containerState {
	t.Helper()
	out, err := docker(t.Context(), t, nil, "inspect", "--format", "{{json .State}}", id)
	if err != nil {
		t.Fatal(err)
	}
	var st containerState
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("docker inspect %s: %v: %s", id, err, out)
	}
	return st
}

// waitHealthy waits until every service in names is healthy, and each
// one-shot (restart: "no") has exited with 0. A long-running container
// that exited, or a one-shot that failed, ends the wait at once.
func (s *stack) waitHealthy(p *types.Project, names []string) {
	s.t.Helper()
	await.Eventually(s.t, "every service of the stack healthy", func() error {
		var waiting []string
		for _, name := range names {
			id := s.container(name)
			if id == "" {
				waiting = append(waiting, name+": no container")
				continue
			}
			st := inspectState(s.t, id)
			oneShot := service(s.t, p, name).Restart == types.RestartPolicyNo
			switch {
			case oneShot && st.Status == "exited" && st.ExitCode == 0:
			case oneShot && st.Status == "exited":
				return await.Stop(fmt.Errorf("%s exited with %d", name, st.ExitCode))
			case st.Status == "exited" || st.Status == "dead":
				return await.Stop(fmt.Errorf("%s is %s (exit code %d)", name, st.Status, st.ExitCode))
			case oneShot:
				waiting = append(waiting, name+": "+st.Status)
			case st.Health == nil:
				return await.Stop(fmt.Errorf("%s has no health check", name))
			case st.Health.Status != "healthy":
				waiting = append(waiting, name+": "+st.Health.Status)
			}
		}
		if len(waiting) > 0 {
			return await.NotYet(strings.Join(waiting, ", "), "all healthy")
		}
		return nil
	}, await.Within(upTime), await.Every(time.Second))
}

// brokerdAdmin runs one of brokerd's admin commands in brokerd-1's
// container, against the cluster, and decodes its JSON answer into v.
func (s *stack) brokerdAdmin(v any, args ...string) {
	s.t.Helper()
	out := s.exec("brokerd-1", append(append([]string{"brokerd"}, args...), "--bootstrap-server", "brokerd-1:9092,brokerd-2:9092,brokerd-3:9092", "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("brokerd %v: %v: %s", args, err, out)
	}
}

// indexerMember returns the member id of the indexer's group's one
// member, which must be static with instance id instance.
func (s *stack) indexerMember(instance string) string {
	s.t.Helper()
	var groups []struct {
		State   string `json:"state"`
		Members []struct {
			MemberID   string  `json:"member_id"`
			InstanceID *string `json:"instance_id"`
		} `json:"members"`
	}
	s.brokerdAdmin(&groups, "consumer-groups", "--describe", "--group", "indexer", "--members")
	if len(groups) != 1 || len(groups[0].Members) != 1 {
		s.t.Fatalf("the group indexer: %+v, want one member", groups)
	}
	m := groups[0].Members[0]
	if m.InstanceID == nil || *m.InstanceID != instance {
		s.t.Fatalf("the group indexer's member %s has instance id %v, want %s (the container's hostname)", m.MemberID, m.InstanceID, instance)
	}
	return m.MemberID
}

// topicPartition is a partition in `brokerd topics --describe`.
type topicPartition struct {
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
}

// describeTopic returns the partitions of the topic httpd.
func (s *stack) describeTopic() []topicPartition {
	s.t.Helper()
	var topics []struct {
		Name       string           `json:"name"`
		Partitions []topicPartition `json:"partitions"`
	}
	s.brokerdAdmin(&topics, "topics", "--describe", "--topic", "httpd")
	if len(topics) != 1 || topics[0].Name != "httpd" {
		s.t.Fatalf("topics --describe --topic httpd: got %+v, want the topic httpd", topics)
	}
	return topics[0].Partitions
}

// checkTopic checks that the topic the stack made has 3 partitions of 3
// replicas each, on the three brokers.
func (s *stack) checkTopic() {
	s.t.Helper()
	parts := s.describeTopic()
	if len(parts) != 3 {
		s.t.Fatalf("httpd has %d partitions, want 3: %+v", len(parts), parts)
	}
	for _, p := range parts {
		replicas := slices.Sorted(slices.Values(p.Replicas))
		if !slices.Equal(replicas, []int32{1, 2, 3}) {
			s.t.Errorf("httpd-%d: replicas: got %v, want [1 2 3]", p.Partition, p.Replicas)
		}
	}
}

// waitFullISR waits until every partition of httpd has its three replicas
// in sync again.
func (s *stack) waitFullISR() {
	s.t.Helper()
	await.Eventually(s.t, "all three replicas of every partition in sync", func() error {
		for _, p := range s.describeTopic() {
			if len(p.ISR) != 3 {
				return await.NotYet(fmt.Sprintf("httpd-%d's ISR %v", p.Partition, p.ISR), "three replicas")
			}
		}
		return nil
	}, await.Within(settleTime), await.Every(time.Second))
}

// busyLeader returns the brokerd service leading the partition of httpd
// that holds the most records.
func (s *stack) busyLeader() string {
	s.t.Helper()
	var groups []struct {
		Offsets []struct {
			Topic        string `json:"topic"`
			Partition    int32  `json:"partition"`
			LogEndOffset *int64 `json:"log_end_offset"`
		} `json:"offsets"`
	}
	s.brokerdAdmin(&groups, "consumer-groups", "--describe", "--group", "indexer")
	busiest, most := int32(-1), int64(0)
	for _, g := range groups {
		for _, o := range g.Offsets {
			if o.Topic == "httpd" && o.LogEndOffset != nil && *o.LogEndOffset > most {
				busiest, most = o.Partition, *o.LogEndOffset
			}
		}
	}
	if busiest < 0 {
		s.t.Fatalf("the group indexer has no partition of httpd with records: %+v", groups)
	}
	for _, p := range s.describeTopic() {
		if p.Partition == busiest {
			return fmt.Sprintf("brokerd-%d", p.Leader)
		}
	}
	s.t.Fatalf("httpd-%d is not in topics --describe", busiest)
	return ""
}

// checkSetup checks that the setup service, run by `up`, installed the
// index templates (the indexer installs those that are missing too, so
// their being there says little): its output names them. Then, with the
// templates deleted, the setup service run again as the compose files
// have it must install them again.
func (s *stack) checkSetup(es *esClient) {
	s.t.Helper()
	var names []string
	for _, pattern := range []string{"httpd_access-*", "httpd_error-*"} {
		names = append(names, setup.TemplateName(pattern))
	}
	out := s.must("logs", "--no-color", "setup")
	for _, name := range names {
		if !regexp.MustCompile(`Index templates installed: \[[^\]]*\b` + regexp.QuoteMeta(name) + `\b`).MatchString(out) {
			s.t.Errorf("setup's output: got %q, want it to say it installed %s", tail(out, 2000), name)
		}
	}
	for _, name := range names {
		es.mustDo(http.MethodDelete, "/_index_template/"+name, nil, http.StatusOK, nil)
		es.mustDo(http.MethodGet, "/_index_template/"+name, nil, http.StatusNotFound, nil)
	}
	s.must("run", "--rm", "--no-deps", "-T", "setup")
	for _, name := range names {
		es.mustDo(http.MethodGet, "/_index_template/"+name, nil, http.StatusOK, nil)
	}
}

// checkGeneratorTraffic waits for the traffic generator's requests, the
// ones that worked and the ones that failed, in both indices, parsed.
func checkGeneratorTraffic(t *testing.T, es *esClient) {
	t.Helper()
	await.Eventually(t, "the traffic generator's lines in httpd_access-* and httpd_error-*", func() error {
		access := es.documents("httpd_access-*", "user_agent.original", "http.response.status_code")
		codes := map[string]int{}
		for _, d := range access {
			if d.text("user_agent.original") == "logpipe-traffic/1" {
				codes[d.text("http.response.status_code")]++
			}
		}
		if codes["200"] == 0 || codes["403"]+codes["404"] == 0 {
			return await.NotYet(fmt.Sprintf("the generator's requests by status %v", codes), "some 200 and some 403 or 404")
		}
		failed := 0
		for _, d := range es.documents("httpd_error-*", "message") {
			if m := d.text("message"); strings.Contains(m, "AH01630: client denied") || strings.Contains(m, "File does not exist: /var/www/html/missing-") {
				failed++
			}
		}
		if failed == 0 {
			return await.NotYet("no error line of a denied or missing page", "some")
		}
		return nil
	}, await.Within(settleTime), await.Every(time.Second))
}

// request is one request of the test to httpd and the status it gets.
type request struct {
	path   string
	status int
}

// newRequest returns the i-th request of a phase: mostly pages that exist,
// every fifth a missing page (404 and an error_log line naming it), every
// seventh the denied folder (403 and an error_log line). Each path is
// unique.
func newRequest(phase string, i int) request {
	switch {
	case i%5 == 0:
		return request{path: fmt.Sprintf("/missing-e2e-%s-%d.html", phase, i), status: http.StatusNotFound}
	case i%7 == 0:
		return request{path: fmt.Sprintf("/private/?e2e=%s-%d", phase, i), status: http.StatusForbidden}
	}
	return request{path: fmt.Sprintf("/about.html?e2e=%s-%d", phase, i), status: http.StatusOK}
}

// sender sends the requests of a phase to httpd from a goroutine, one
// every sendEvery, until it is told to finish.
type sender struct {
	t    *testing.T
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	sent []request // the requests answered as expected
	err  error     // what ended the sending early
}

// startSending starts sending the requests of phase to site; the end of
// the test stops it if finish did not.
func startSending(t *testing.T, site, phase string) *sender {
	snd := &sender{t: t, stop: make(chan struct{}), done: make(chan struct{})}
	go snd.send(site, phase)
	t.Cleanup(func() {
		select {
		case <-snd.stop:
		default:
			close(snd.stop)
		}
		<-snd.done
	})
	return snd
}

func (snd *sender) send(site, phase string) {
	defer close(snd.done)
	client := &http.Client{Timeout: 30 * time.Second}
	tick := time.NewTicker(sendEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-snd.stop:
			return
		case <-tick.C:
		}
		r := newRequest(phase, i)
		err := get(client, site, r)
		snd.mu.Lock()
		if err != nil {
			snd.err = err
		} else {
			snd.sent = append(snd.sent, r)
		}
		snd.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// get makes one request and checks the status of its answer.
func get(client *http.Client, site string, r request) error {
	req, err := http.NewRequest(http.MethodGet, site+r.path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "logpipe-e2e")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", r.path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != r.status {
		return fmt.Errorf("GET %s: got %s, want %d", r.path, resp.Status, r.status)
	}
	return nil
}

// count returns how many requests were answered as expected so far.
func (snd *sender) count() int {
	snd.mu.Lock()
	defer snd.mu.Unlock()
	return len(snd.sent)
}

// failed returns the error that ended the sending early, if one did.
func (snd *sender) failed() error {
	snd.mu.Lock()
	defer snd.mu.Unlock()
	return snd.err
}

// waitSent waits until at least n requests were answered.
func (snd *sender) waitSent(n int) {
	snd.t.Helper()
	await.Eventually(snd.t, fmt.Sprintf("%d requests of the test answered", n), func() error {
		if got := snd.count(); got < n {
			return await.NotYet(got, fmt.Sprintf("at least %d", n))
		}
		return nil
	}, await.Within(settleTime), await.Every(sendEvery), await.While(snd.failed))
}

// finish stops the sending after the request under way and returns the
// requests answered.
func (snd *sender) finish() []request {
	snd.t.Helper()
	close(snd.stop)
	<-snd.done
	if err := snd.failed(); err != nil {
		snd.t.Fatal(err)
	}
	snd.mu.Lock()
	defer snd.mu.Unlock()
	return snd.sent
}

// Times in httpd's logs: the access log's (%t) and the error log's, which
// has no zone; the indexer reads it as UTC, the containers' zone.
var (
	accessTime = regexp.MustCompile(`\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [-+]\d{4})\]`)
	errorTime  = regexp.MustCompile(`^\[(\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2}\.\d+ \d{4})\]`)
)

// expectedDocs reads httpd's log files in its container and returns how
// many documents each index must hold: one per access line and one per
// error line (a line not starting with "[" joins the one before, as the
// shipper's multiline setting says), in the index of the line's date.
func (s *stack) expectedDocs() map[string]int {
	s.t.Helper()
	want := map[string]int{}
	for _, line := range strings.Split(s.exec("httpd", "cat", "/var/log/httpd/access_log"), "\n") {
		if line == "" {
			continue
		}
		m := accessTime.FindStringSubmatch(line)
		if m == nil {
			s.t.Fatalf("an access_log line without a time: %q", line)
		}
		ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[1])
		if err != nil {
			s.t.Fatal(err)
		}
		want["httpd_access-"+ts.UTC().Format("2006.01.02")]++
	}
	for _, line := range strings.Split(s.exec("httpd", "cat", "/var/log/httpd/error_log"), "\n") {
		if !strings.HasPrefix(line, "[") {
			continue
		}
		m := errorTime.FindStringSubmatch(line)
		if m == nil {
			s.t.Fatalf("an error_log line without a time: %q", line)
		}
		ts, err := time.ParseInLocation("Mon Jan 02 15:04:05.000000 2006", m[1], time.UTC)
		if err != nil {
			s.t.Fatal(err)
		}
		want["httpd_error-"+ts.Format("2006.01.02")]++
	}
	return want
}

// checkExact waits until each index holds exactly as many documents as
// httpd's logs have lines for it, then checks that every request of the
// test is in exactly one access document, parsed, and every missing page
// in exactly one error document; and that nothing went to the dead-letter
// index or failed to parse.
func (s *stack) checkExact(es *esClient, sent []request) {
	s.t.Helper()
	want := s.expectedDocs()
	await.Eventually(s.t, "as many documents per index as httpd logged lines", func() error {
		if got := es.docsPerIndex("httpd_*"); !maps.Equal(got, want) {
			return await.NotYet(got, want)
		}
		return nil
	}, await.Within(settleTime), await.Every(time.Second))

	seen := map[string][]string{}
	for _, d := range es.documents("httpd_access-*", "url.original", "http.response.status_code", "tags") {
		seen[d.text("url.original")] = append(seen[d.text("url.original")], d.text("http.response.status_code"))
		if slices.Contains(d["tags"], "_httpdparsefailure") {
			s.t.Errorf("an access line the indexer could not parse: %v", d)
		}
	}
	missing := map[string]int{}
	for _, d := range es.documents("httpd_error-*", "message", "tags") {
		if _, file, ok := strings.Cut(d.text("message"), "File does not exist: /var/www/html"); ok {
			missing[file]++
		}
		if slices.Contains(d["tags"], "_httpdparsefailure") {
			s.t.Errorf("an error line the indexer could not parse: %v", d)
		}
	}
	for _, r := range sent {
		if got, want := seen[r.path], []string{fmt.Sprint(r.status)}; !slices.Equal(got, want) {
			s.t.Errorf("documents of GET %s: got statuses %v, want %v", r.path, got, want)
		}
		if r.status == http.StatusNotFound {
			if got := missing[r.path]; got != 1 {
				s.t.Errorf("error documents naming %s: got %d, want 1", r.path, got)
			}
		}
	}
	if got := es.count("logpipe-dlq-*"); got != 0 {
		s.t.Errorf("dead-letter documents: got %d, want 0", got)
	}
	if s.t.Failed() {
		s.t.FailNow()
	}
	s.t.Logf("exact: %v for %d requests of the test", want, len(sent))
}

// esClient talks to the stack's Elasticsearch on its published port.
type esClient struct {
	t   *testing.T
	url string
}

// do sends a request and returns the answer's status and body.
func (es *esClient) do(method, path string, body any) (int, []byte) {
	es.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			es.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(es.t.Context(), method, es.url+path, rd)
	if err != nil {
		es.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		es.t.Fatalf("elasticsearch %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		es.t.Fatalf("elasticsearch %s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// mustDo sends a request whose answer must have status want, and decodes
// its body into v unless v is nil.
func (es *esClient) mustDo(method, path string, body any, want int, v any) {
	es.t.Helper()
	code, b := es.do(method, path, body)
	if code != want {
		es.t.Fatalf("elasticsearch %s %s: got %d, want %d: %s", method, path, code, want, tail(string(b), 2000))
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		es.t.Fatalf("elasticsearch %s %s: %v: %s", method, path, err, tail(string(b), 2000))
	}
}

// docsPerIndex refreshes the indices of pattern and returns how many
// documents each holds.
func (es *esClient) docsPerIndex(pattern string) map[string]int {
	es.t.Helper()
	es.mustDo(http.MethodPost, "/"+pattern+"/_refresh", nil, http.StatusOK, nil)
	var answer struct {
		Aggregations struct {
			Indices struct {
				Buckets []struct {
					Key      string `json:"key"`
					DocCount int    `json:"doc_count"`
				} `json:"buckets"`
			} `json:"indices"`
		} `json:"aggregations"`
	}
	es.mustDo(http.MethodPost, "/"+pattern+"/_search", map[string]any{
		"size": 0, "aggs": map[string]any{"indices": map[string]any{"terms": map[string]any{"field": "_index", "size": 1000}}},
	}, http.StatusOK, &answer)
	got := map[string]int{}
	for _, b := range answer.Aggregations.Indices.Buckets {
		got[b.Key] = b.DocCount
	}
	return got
}

// count returns how many documents the indices of pattern hold.
func (es *esClient) count(pattern string) int {
	es.t.Helper()
	var answer struct {
		Count int `json:"count"`
	}
	es.mustDo(http.MethodGet, "/"+pattern+"/_count", nil, http.StatusOK, &answer)
	return answer.Count
}

// document is a search hit's fields, each a list of values.
type document map[string][]any

// text returns a field's first value as text ("" when absent).
func (d document) text(field string) string {
	if len(d[field]) == 0 {
		return ""
	}
	return fmt.Sprint(d[field][0])
}

// documents returns the given fields of every document in the indices of
// pattern (at most 10000).
func (es *esClient) documents(pattern string, fields ...string) []document {
	es.t.Helper()
	es.mustDo(http.MethodPost, "/"+pattern+"/_refresh", nil, http.StatusOK, nil)
	var answer struct {
		Hits struct {
			Hits []struct {
				Fields document `json:"fields"`
			} `json:"hits"`
		} `json:"hits"`
	}
	es.mustDo(http.MethodPost, "/"+pattern+"/_search", map[string]any{
		"size": 10000, "_source": false, "fields": fields, "query": map[string]any{"match_all": map[string]any{}},
	}, http.StatusOK, &answer)
	var out []document
	for _, h := range answer.Hits.Hits {
		out = append(out, h.Fields)
	}
	return out
}
