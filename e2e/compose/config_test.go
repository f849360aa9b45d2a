package compose_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadProject loads the compose files (paths relative to the repository
// root, the first being docker-compose.yml) as Compose v2 does, with only
// the variables given: the process's own environment is left out, so the
// defaults written in the file are what is checked.
func loadProject(t *testing.T, vars map[string]string, files ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(root, f))
	}
	opts, err := cli.NewProjectOptions(paths, cli.WithWorkingDirectory(root), cli.WithName("logpipe"), cli.WithEnv(envList(vars)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go refuses %v: %v", files, err)
	}
	return p
}

// service returns one service of p.
func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// settings returns the -E key=value overrides of a logpipe command line
// (entry point and command together).
func settings(s types.ServiceConfig) map[string]string {
	args := append(slices.Clone(s.Entrypoint), s.Command...)
	out := map[string]string{}
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-E" {
			k, v, _ := strings.Cut(args[i+1], "=")
			out[k] = v
		}
	}
	return out
}

// flagValue returns the value after flag in a command line, or "".
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

var brokerdService = regexp.MustCompile(`^brokerd-(\d+)$`)

// checkQuorum checks that every brokerd-N service is node N, advertised
// under its service name on a listener of protocol, and that all of them
// list the same voters: every brokerd service's controller listener.
func checkQuorum(t *testing.T, p *types.Project, wantNodes int, protocol string) {
	t.Helper()
	var want []string
	for _, name := range p.ServiceNames() {
		if m := brokerdService.FindStringSubmatch(name); m != nil {
			want = append(want, fmt.Sprintf("%s@%s:9093", m[1], name))
		}
	}
	if len(want) != wantNodes {
		t.Fatalf("brokerd services: got %d (%v), want %d", len(want), want, wantNodes)
	}
	slices.Sort(want)
	for _, name := range p.ServiceNames() {
		m := brokerdService.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		e := settings(service(t, p, name))
		if e["node.id"] != m[1] {
			t.Errorf("%s: node.id: got %q, want %q", name, e["node.id"], m[1])
		}
		if want := protocol + "://" + name + ":9092"; e["advertised.listeners"] != want {
			t.Errorf("%s: advertised.listeners: got %q, want %q", name, e["advertised.listeners"], want)
		}
		if !strings.Contains(e["listeners"], "CONTROLLER://0.0.0.0:9093") {
			t.Errorf("%s: listeners: got %q, want a CONTROLLER listener on 9093", name, e["listeners"])
		}
		voters := strings.Split(e["controller.quorum.voters"], ",")
		slices.Sort(voters)
		if !slices.Equal(voters, want) {
			t.Errorf("%s: controller.quorum.voters: got %v, want %v", name, voters, want)
		}
	}
}

// TestComposeFileForComposeV2 loads docker-compose.yml with compose-go,
// the loader of Compose v2, and checks what the stack relies on.
func TestComposeFileForComposeV2(t *testing.T) {
	p := loadProject(t, nil, "docker-compose.yml")

	wantServices := []string{"brokerd-1", "brokerd-2", "brokerd-3", "elasticsearch", "httpd", "indexer", "kibana", "setup", "shipper", "topics", "traffic"}
	if got := p.ServiceNames(); !slices.Equal(got, wantServices) {
		t.Fatalf("services: got %v, want %v", got, wantServices)
	}

	oneShot := []string{"setup", "topics"}
	for _, name := range p.ServiceNames() {
		s := service(t, p, name)
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q, want 127.0.0.1 only", name, port.Published, port.HostIP)
			}
		}
		if slices.Contains(oneShot, name) {
			if s.Restart != types.RestartPolicyNo {
				t.Errorf("%s is a one-shot: restart: got %q, want %q", name, s.Restart, types.RestartPolicyNo)
			}
			continue
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no health check", name)
		}
		if s.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("%s: restart: got %q, want %q", name, s.Restart, types.RestartPolicyUnlessStopped)
		}
	}

	// The order of `up`: what each service waits for, and how.
	wantDeps := map[string]map[string]string{
		"topics":  {"brokerd-1": types.ServiceConditionHealthy, "brokerd-2": types.ServiceConditionHealthy, "brokerd-3": types.ServiceConditionHealthy},
		"kibana":  {"elasticsearch": types.ServiceConditionHealthy},
		"setup":   {"elasticsearch": types.ServiceConditionHealthy},
		"indexer": {"elasticsearch": types.ServiceConditionHealthy, "topics": types.ServiceConditionCompletedSuccessfully},
		"shipper": {"topics": types.ServiceConditionCompletedSuccessfully},
		"traffic": {"httpd": types.ServiceConditionHealthy},
	}
	for _, name := range p.ServiceNames() {
		got := map[string]string{}
		for dep, d := range service(t, p, name).DependsOn {
			got[dep] = d.Condition
		}
		if want := wantDeps[name]; !maps.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s depends_on: got %v, want %v", name, got, want)
		}
	}

	// setup waits for Kibana itself, no matter how long its first start
	// takes, rather than in depends_on.
	setup := service(t, p, "setup")
	if got := settings(setup)["kibana.url"]; got != "http://kibana:5601" {
		t.Errorf("setup: kibana.url: got %q, want http://kibana:5601", got)
	}
	if got, err := time.ParseDuration(flagValue(setup.Command, "--wait")); err != nil || got < 10*time.Minute {
		t.Errorf("setup: --wait: got %q (%v), want at least 10m", flagValue(setup.Command, "--wait"), err)
	}

	// mountOf is what service svc mounts at target.
	mountOf := func(svc, target string) types.ServiceVolumeConfig {
		for _, v := range service(t, p, svc).Volumes {
			if v.Target == target {
				return v
			}
		}
		t.Fatalf("%s mounts nothing at %s", svc, target)
		return types.ServiceVolumeConfig{}
	}
	// What each health check asks, and the settings of the local
	// Elasticsearch the issue names: single node, security off, a heap.
	for name, want := range map[string]string{
		"brokerd-1": "/readyz", "brokerd-2": "/readyz", "brokerd-3": "/readyz", "indexer": "/readyz", "shipper": "/readyz",
		"elasticsearch": "/_cluster/health", "kibana": "/api/status", "httpd": "/healthz",
	} {
		if test := strings.Join(service(t, p, name).HealthCheck.Test, " "); !strings.Contains(test, want) {
			t.Errorf("%s's health check %q does not ask %s", name, test, want)
		}
	}
	env := service(t, p, "elasticsearch").Environment
	for key, want := range map[string]string{"discovery.type": "single-node", "xpack.security.enabled": "false", "ES_JAVA_OPTS": "-Xms512m -Xmx512m"} {
		if got := env[key]; got == nil || *got != want {
			t.Errorf("elasticsearch: %s: got %v, want %q", key, got, want)
		}
	}
	// Each broker keeps its data in a volume of its own.
	seen := map[string]string{}
	for _, name := range []string{"brokerd-1", "brokerd-2", "brokerd-3"} {
		v := mountOf(name, "/var/lib/logpipe")
		if v.Type != types.VolumeTypeVolume || seen[v.Source] != "" {
			t.Errorf("%s's /var/lib/logpipe: got %s %q, want a named volume of its own (also used by %q)", name, v.Type, v.Source, seen[v.Source])
		}
		seen[v.Source] = name
	}

	checkQuorum(t, p, 3, "PLAINTEXT")
	topics := service(t, p, "topics").Command
	if got := [3]string{flagValue(topics, "--topic"), flagValue(topics, "--partitions"), flagValue(topics, "--replication-factor")}; got != [3]string{"httpd", "3", "3"} {
		t.Errorf("topics creates (topic, partitions, replication factor) %v, want [httpd 3 3]", got)
	}

	// The shipper reads the volume httpd writes its logs to.
	httpdLogs, shipperLogs := mountOf("httpd", "/var/log/httpd"), mountOf("shipper", "/var/log/httpd")
	if httpdLogs.Type != types.VolumeTypeVolume || shipperLogs.Source != httpdLogs.Source || !shipperLogs.ReadOnly {
		t.Errorf("shipper's /var/log/httpd: got %s %s (read-only %v), want httpd's volume %s, read-only", shipperLogs.Type, shipperLogs.Source, shipperLogs.ReadOnly, httpdLogs.Source)
	}
	if got := settings(service(t, p, "shipper"))["name"]; got == "" {
		t.Errorf("the shipper has no fixed name: the events' ids would change with the container's host name")
	}
	if got := mountOf("shipper", "/etc/logpipe").Source; got != filepath.Join(repoRoot(t), "configs") {
		t.Errorf("shipper's /etc/logpipe: got %s, want the repository's configs/", got)
	}

	// Images users pull: the official ones by default, replaceable.
	es, kibana := service(t, p, "elasticsearch").Image, service(t, p, "kibana").Image
	if !strings.HasPrefix(es, "docker.elastic.co/elasticsearch/elasticsearch:8.") || !strings.HasPrefix(kibana, "docker.elastic.co/kibana/kibana:8.") {
		t.Errorf("default images: got %s and %s, want Elastic's official 8.x", es, kibana)
	}
	if _, esVersion, _ := strings.Cut(es, ":"); !strings.HasSuffix(kibana, ":"+esVersion) {
		t.Errorf("Kibana %s is not Elasticsearch's version %s", kibana, esVersion)
	}
	for _, s := range p.Services {
		if s.Build == nil {
			continue
		}
		if got := s.Build.Args["DEBIAN_IMAGE"]; got == nil || *got != "debian:bookworm-slim" {
			t.Errorf("%s: build argument DEBIAN_IMAGE: got %v, want debian:bookworm-slim", s.Name, got)
		}
	}
	replaced := loadProject(t, map[string]string{"ES_IMAGE": "local/es:1", "KIBANA_IMAGE": "local/kibana:1", "DEBIAN_IMAGE": "local/debian:1", "HTTPD_LOGS": "/srv/httpd/logs"}, "docker-compose.yml")
	if got := service(t, replaced, "elasticsearch").Image; got != "local/es:1" {
		t.Errorf("ES_IMAGE=local/es:1: elasticsearch runs %s", got)
	}
	if got := service(t, replaced, "kibana").Image; got != "local/kibana:1" {
		t.Errorf("KIBANA_IMAGE=local/kibana:1: kibana runs %s", got)
	}
	if got := service(t, replaced, "httpd").Build.Args["DEBIAN_IMAGE"]; got == nil || *got != "local/debian:1" {
		t.Errorf("DEBIAN_IMAGE=local/debian:1: httpd is built from %v", got)
	}
	for _, v := range service(t, replaced, "shipper").Volumes {
		if v.Target == "/var/log/httpd" && (v.Type != types.VolumeTypeBind || v.Source != "/srv/httpd/logs") {
			t.Errorf("HTTPD_LOGS=/srv/httpd/logs: the shipper's /var/log/httpd is %s %s, want that folder", v.Type, v.Source)
		}
	}
}

// fiveVoters is BROKERD_VOTERS for deploy/compose/five-brokers.yml.
const fiveVoters = "1@brokerd-1:9093,2@brokerd-2:9093,3@brokerd-3:9093,4@brokerd-4:9093,5@brokerd-5:9093"

// TestFiveBrokersOverride loads the override that scales the quorum to
// five nodes, as README.md tells.
func TestFiveBrokersOverride(t *testing.T) {
	p := loadProject(t, map[string]string{"BROKERD_VOTERS": fiveVoters}, "docker-compose.yml", "deploy/compose/five-brokers.yml")
	checkQuorum(t, p, 5, "PLAINTEXT")
	for _, name := range []string{"brokerd-4", "brokerd-5"} {
		s := service(t, p, name)
		if d, ok := service(t, p, "topics").DependsOn[name]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("topics does not wait for %s to be healthy: %+v", name, d)
		}
		var data []string
		for _, v := range s.Volumes {
			if v.Target == "/var/lib/logpipe" {
				data = append(data, v.Source)
			}
		}
		if want := []string{name + "-data"}; !slices.Equal(data, want) {
			t.Errorf("%s keeps its data in %v, want %v", name, data, want)
		}
	}
}

// TestBrokerOnlyOverride loads the override that adds a broker-only node
// to the running cluster, as README.md tells: it is no voter, has no
// controller listener and knows the three voters.
func TestBrokerOnlyOverride(t *testing.T) {
	p := loadProject(t, nil, "docker-compose.yml", "deploy/compose/broker-only.yml")
	e := settings(service(t, p, "brokerd-4"))
	want := map[string]string{
		"node.id":                  "4",
		"process.roles":            "broker",
		"listeners":                "PLAINTEXT://0.0.0.0:9092",
		"advertised.listeners":     "PLAINTEXT://brokerd-4:9092",
		"controller.quorum.voters": settings(service(t, p, "brokerd-1"))["controller.quorum.voters"],
	}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("brokerd-4: %s: got %q, want %q", k, e[k], v)
		}
	}
	var data []string
	for _, v := range service(t, p, "brokerd-4").Volumes {
		if v.Target == "/var/lib/logpipe" {
			data = append(data, v.Source)
		}
	}
	if want := []string{"brokerd-4-data"}; !slices.Equal(data, want) {
		t.Errorf("brokerd-4 keeps its data in %v, want %v", data, want)
	}
}

// TestWithoutKibanaOverride loads the override that leaves Kibana out, as
// README.md tells: kibana is disabled (in a profile of its own; compose-go
// would refuse the project if a started service still depended on it),
// setup installs the index templates alone, and every other service is as
// docker-compose.yml has it.
func TestWithoutKibanaOverride(t *testing.T) {
	base := loadProject(t, nil, "docker-compose.yml")
	p := loadProject(t, nil, "docker-compose.yml", "deploy/compose/without-kibana.yml")

	if got, want := p.DisabledServiceNames(), []string{"kibana"}; !slices.Equal(got, want) {
		t.Errorf("disabled services: got %v, want %v", got, want)
	}
	if got, want := p.ServiceNames(), slices.DeleteFunc(base.ServiceNames(), func(name string) bool { return name == "kibana" }); !slices.Equal(got, want) {
		t.Fatalf("services compose starts: got %v, want %v", got, want)
	}
	kibana, ok := p.DisabledServices["kibana"]
	if !ok {
		t.Fatalf("kibana is not among the disabled services %v", p.DisabledServiceNames())
	}
	if want := []string{"kibana"}; !slices.Equal(kibana.Profiles, want) {
		t.Errorf("kibana's profiles: got %v, want %v", kibana.Profiles, want)
	}

	setup := service(t, p, "setup")
	if !slices.Contains(setup.Command, "--templates") || flagValue(setup.Command, "--wait") == "" {
		t.Errorf("setup's command: got %v, want --templates and a --wait", setup.Command)
	}
	if e := settings(setup); e["kibana.url"] != "" {
		t.Errorf("setup: kibana.url: got %q, want none", e["kibana.url"])
	}

	// What the override changes: those two fields, nothing else (setup's
	// entry point stays).
	changes := map[string][]string{"kibana": {"profiles"}, "setup": {"command"}}
	for name, s := range p.AllServices() {
		if got, want := changedFields(t, s, service(t, base, name)), changes[name]; !slices.Equal(got, want) {
			t.Errorf("%s: fields the override changes: got %v, want %v", name, got, want)
		}
	}
	if !reflect.DeepEqual(p.Volumes, base.Volumes) || !reflect.DeepEqual(p.Networks, base.Networks) {
		t.Errorf("volumes and networks: got %v %v, want docker-compose.yml's %v %v", p.Volumes, p.Networks, base.Volumes, base.Networks)
	}
}

// changedFields returns the fields (named as in a compose file) in which
// two configurations of a service differ, and logs both values of each.
func changedFields(t *testing.T, got, want types.ServiceConfig) []string {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	var changed []string
	// The fields of the embedded specs are fields of the service in a
	// compose file.
	for _, f := range reflect.VisibleFields(g.Type()) {
		if f.Anonymous {
			continue
		}
		gv, wv := g.FieldByIndex(f.Index).Interface(), w.FieldByIndex(f.Index).Interface()
		if !reflect.DeepEqual(gv, wv) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			name = cmp.Or(name, f.Name)
			changed = append(changed, name)
			t.Logf("%s: %s: %+v, was %+v", got.Name, name, gv, wv)
		}
	}
	return changed
}

// TestComposeFileForComposeV1 has Debian's docker-compose 1.29 check the
// file alone, with each override, and with the variables the end-to-end
// test sets; it must see the services compose-go sees.
func TestComposeFileForComposeV1(t *testing.T) {
	composeBin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatalf("docker-compose is not installed: run deploy/deps.sh (it installs docker.io docker-compose debootstrap)")
	}
	out, err := exec.Command(composeBin, "version", "--short").Output()
	if err != nil {
		t.Fatalf("docker-compose version: %v", err)
	}
	t.Logf("docker-compose %s", strings.TrimSpace(string(out)))
	root := repoRoot(t)
	for _, c := range []struct {
		files []string
		vars  map[string]string
	}{
		{files: []string{"docker-compose.yml"}},
		{files: []string{"docker-compose.yml", "deploy/compose/five-brokers.yml"}, vars: map[string]string{"BROKERD_VOTERS": fiveVoters}},
		{files: []string{"docker-compose.yml", "deploy/compose/broker-only.yml"}},
		{files: []string{"docker-compose.yml", "deploy/compose/without-kibana.yml"}, vars: testVars(8080, 9200, 5601)},
		{files: []string{"docker-compose.yml"}, vars: testVars(8080, 9200, 5601)},
		{files: []string{"docker-compose.yml", "docker-compose.secured.yml"}, vars: securedPasswords},
	} {
		args := []string{"config", "--services"}
		for i := len(c.files) - 1; i >= 0; i-- {
			args = append([]string{"-f", filepath.Join(root, c.files[i])}, args...)
		}
		cmd := exec.Command(composeBin, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), envList(c.vars)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("docker-compose %v refuses: %v\n%s", c.files, err, out)
			continue
		}
		// docker-compose 1.29 lists the services of every profile.
		got := strings.Fields(string(out))
		slices.Sort(got)
		p := loadProject(t, c.vars, c.files...)
		want := slices.Sorted(slices.Values(append(p.ServiceNames(), p.DisabledServiceNames()...)))
		if !slices.Equal(got, want) {
			t.Errorf("docker-compose %v: services: got %v, compose-go got %v", c.files, got, want)
		}
	}
}

// testVars are the compose variables of the end-to-end test: the
// stand-in images, the test's own names for the images the stack builds,
// free ports, and the Go module proxy of this machine.
func testVars(httpdPort, esPort, kibanaPort int) map[string]string {
	vars := map[string]string{
		"DEBIAN_IMAGE":     standinDebian,
		"GO_IMAGE":         standinGolang,
		"ES_IMAGE":         standinES,
		"LOGPIPE_IMAGE":    "logpipe-e2e/logpipe:compose",
		"HTTPD_IMAGE":      "logpipe-e2e/httpd:compose",
		"HTTPD_PORT":       strconv.Itoa(httpdPort),
		"ES_PORT":          strconv.Itoa(esPort),
		"KIBANA_PORT":      strconv.Itoa(kibanaPort),
		"ES_HEAP":          "384m",
		"TRAFFIC_INTERVAL": "0.5",
	}
	for _, name := range []string{"GOPROXY", "GOSUMDB"} {
		if out, err := exec.Command("go", "env", name).Output(); err == nil && strings.TrimSpace(string(out)) != "" {
			vars[name] = strings.TrimSpace(string(out))
		}
	}
	return vars
}

// securedPasswords are the variables docker-compose.secured.yml requires.
var securedPasswords = map[string]string{
	"LOGPIPE_ADMIN_PASSWORD":   "admin-pw",
	"LOGPIPE_BROKER_PASSWORD":  "broker-pw",
	"LOGPIPE_SHIPPER_PASSWORD": "shipper-pw",
	"LOGPIPE_INDEXER_PASSWORD": "indexer-pw",
}

// TestSecuredOverrideConfig loads docker-compose.secured.yml over
// docker-compose.yml, as README.md tells, and checks the order of `up`,
// what each service runs and sees, and that the files it names are in
// configs/secured. TestSecuredComposeStack runs it in Docker.
func TestSecuredOverrideConfig(t *testing.T) {
	root := repoRoot(t)
	for missing := range securedPasswords {
		vars := maps.Clone(securedPasswords)
		delete(vars, missing)
		opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml"), filepath.Join(root, "docker-compose.secured.yml")},
			cli.WithWorkingDirectory(root), cli.WithName("logpipe"), cli.WithEnv(envList(vars)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := opts.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: compose-go says %v, want a refusal naming it", missing, err)
		}
	}

	p := loadProject(t, securedPasswords, "docker-compose.yml", "docker-compose.secured.yml")
	want := []string{"brokerd-1", "brokerd-2", "brokerd-3", "elasticsearch", "httpd", "indexer", "kibana", "prepare-security", "setup", "setup-security", "shipper", "topics", "traffic"}
	if got := p.ServiceNames(); !slices.Equal(got, want) {
		t.Fatalf("services: got %v, want %v", got, want)
	}
	checkQuorum(t, p, 3, "SASL_SSL")

	// The order of `up`.
	healthy, done := types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully
	brokers := map[string]string{"brokerd-1": healthy, "brokerd-2": healthy, "brokerd-3": healthy}
	wantDeps := map[string]map[string]string{
		"prepare-security": {},
		"brokerd-1":        {"prepare-security": done},
		"brokerd-2":        {"prepare-security": done},
		"brokerd-3":        {"prepare-security": done},
		"topics":           brokers,
		"setup-security":   brokers,
		"indexer":          {"elasticsearch": healthy, "topics": done, "setup-security": done},
		"shipper":          {"topics": done, "setup-security": done},
	}
	for name, want := range wantDeps {
		got := map[string]string{}
		for dep, d := range service(t, p, name).DependsOn {
			got[dep] = d.Condition
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s depends_on: got %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"prepare-security", "setup-security", "topics"} {
		if s := service(t, p, name); s.Restart != types.RestartPolicyNo {
			t.Errorf("%s is a one-shot: restart: got %q, want %q", name, s.Restart, types.RestartPolicyNo)
		}
	}

	// What each runs: a file of configs/secured (mounted at
	// /etc/logpipe), with the passwords and the security folder in its
	// environment, the folder mounted there.
	secured := filepath.Join(root, "configs", "secured")
	for name, w := range map[string]struct {
		file     string
		env      []string
		volume   string
		readOnly bool
	}{
		"prepare-security": {"prepare.sh", []string{"LOGPIPE_ADMIN_PASSWORD", "LOGPIPE_BROKER_PASSWORD"}, "", false},
		"brokerd-1":        {"brokerd.yml", []string{"LOGPIPE_BROKER_PASSWORD"}, "security-brokerd", true},
		"brokerd-2":        {"brokerd.yml", []string{"LOGPIPE_BROKER_PASSWORD"}, "security-brokerd", true},
		"brokerd-3":        {"brokerd.yml", []string{"LOGPIPE_BROKER_PASSWORD"}, "security-brokerd", true},
		"topics":           {"bootstrap.sh", []string{"LOGPIPE_ADMIN_PASSWORD"}, "security-clients", true},
		"setup-security":   {"bootstrap.sh", []string{"LOGPIPE_ADMIN_PASSWORD", "LOGPIPE_SHIPPER_PASSWORD", "LOGPIPE_INDEXER_PASSWORD"}, "security-clients", true},
		"shipper":          {"shipper.yml", []string{"LOGPIPE_SHIPPER_PASSWORD"}, "security-clients", true},
		"indexer":          {"indexer.yml", []string{"LOGPIPE_INDEXER_PASSWORD"}, "security-clients", true},
	} {
		s := service(t, p, name)
		args := append(slices.Clone(s.Entrypoint), s.Command...)
		path := "/etc/logpipe/secured/" + w.file
		if !slices.Contains(args, path) {
			t.Errorf("%s runs %v, want it to use %s", name, args, path)
		}
		if _, err := os.Stat(filepath.Join(secured, w.file)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, k := range w.env {
			if v := s.Environment[k]; v == nil || *v != securedPasswords[k] {
				t.Errorf("%s: environment %s: got %v, want %q", name, k, v, securedPasswords[k])
			}
		}
		if w.volume == "" {
			continue
		}
		dir := s.Environment["LOGPIPE_SECURITY_DIR"]
		if dir == nil {
			t.Errorf("%s: no LOGPIPE_SECURITY_DIR in its environment", name)
			continue
		}
		var got []string
		for _, v := range s.Volumes {
			if v.Target == *dir {
				got = append(got, fmt.Sprintf("%s %s read-only=%v", v.Type, v.Source, v.ReadOnly))
			}
		}
		if want := []string{fmt.Sprintf("volume %s read-only=%v", w.volume, w.readOnly)}; !slices.Equal(got, want) {
			t.Errorf("%s: mounted at LOGPIPE_SECURITY_DIR %s: got %v, want %v", name, *dir, got, want)
		}
	}

	// The CA's key is seen by prepare-security alone, brokerd's key by
	// the brokers besides.
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			switch {
			case v.Source == "security-ca" && s.Name != "prepare-security",
				v.Source == "security-brokerd" && s.Name != "prepare-security" && !brokerdService.MatchString(s.Name):
				t.Errorf("%s mounts %s", s.Name, v.Source)
			}
		}
	}

	// The brokers: SASL_SSL for clients, brokers and the controller
	// listener, authorization from the secured config with no
	// unauthenticated super user.
	for name := range brokers {
		e := settings(service(t, p, name))
		if got, want := e["listener.security.protocol.map"], "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL"; got != want {
			t.Errorf("%s: listener.security.protocol.map: got %q, want %q", name, got, want)
		}
		if got := strings.Split(e["listeners"], ","); !slices.Contains(got, "SASL_SSL://0.0.0.0:9092") || len(got) != 2 {
			t.Errorf("%s: listeners: got %v, want SASL_SSL on 9092 and the controller's", name, got)
		}
		if got := strings.Split(e["super.users"], ";"); !slices.Contains(got, "User:admin") || !slices.Contains(got, "User:broker") || slices.Contains(got, "User:ANONYMOUS") {
			t.Errorf("%s: super.users: got %v, want the admin and the brokers' account, not User:ANONYMOUS", name, got)
		}
	}
	// Bootstrap over the secured listeners.
	for _, name := range []string{"topics", "setup-security"} {
		if got := service(t, p, name).Environment["BOOTSTRAP_SERVER"]; got == nil || *got != "brokerd-1:9092,brokerd-2:9092,brokerd-3:9092" {
			t.Errorf("%s: BOOTSTRAP_SERVER: got %v, want the three brokers", name, got)
		}
	}
	if got := settings(service(t, p, "shipper"))["output.kafka.hosts"]; got != "[brokerd-1:9092,brokerd-2:9092,brokerd-3:9092]" {
		t.Errorf("shipper: output.kafka.hosts: got %q, want the three brokers", got)
	}
	if got := settings(service(t, p, "indexer"))["kafka.hosts"]; got != "[brokerd-1:9092,brokerd-2:9092,brokerd-3:9092]" {
		t.Errorf("indexer: kafka.hosts: got %q, want the three brokers", got)
	}
}
