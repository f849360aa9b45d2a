package compose_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// The images this machine cannot pull, built here instead and named so
// that nobody takes them for the official ones; the test hands them to the
// compose file through its variables.
const (
	standinDebian = "logpipe-standin/debian:bookworm-slim"
	standinGolang = "logpipe-standin/golang:1.26-bookworm"
	standinES     = "logpipe-standin/elasticsearch:8.19.21"
	// standinLabel holds the hash of what a stand-in was built from; a
	// stand-in whose inputs changed is built again.
	standinLabel = "logpipe.standin.inputs"
)

// dockerPath is the Docker client: Debian's (docker.io) when installed,
// which matches Debian's engine and docker-compose, else the first on PATH.
func dockerPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Fatalf("compose: no docker client: run deploy/deps.sh (it installs docker.io docker-compose debootstrap)")
	}
	return p
}

// dockerEnv is the environment of every docker and docker-compose command:
// the chosen client's folder first on PATH (docker-compose runs `docker
// build` from PATH), and the classic builder, which uses local images as
// they are.
func dockerEnv(t *testing.T) []string {
	t.Helper()
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "DOCKER_BUILDKIT=")
	})
	return append(env, "PATH="+filepath.Dir(dockerPath(t))+string(os.PathListSeparator)+os.Getenv("PATH"), "DOCKER_BUILDKIT=0")
}

// docker runs the Docker client and returns its standard output; a
// failure's error holds its standard error.
func docker(ctx context.Context, t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, dockerPath(t), args...)
	cmd.Env = dockerEnv(t)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s: %w\n%s%s", strings.Join(args, " "), err, tail(out.String(), 2000), tail(errOut.String(), 4000))
	}
	return out.String(), nil
}

// tail returns the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// startDocker makes sure a Docker engine answers. If none does it starts
// Debian's dockerd (the test runs as root in CI) and stops it again when
// the test ends; an engine that was running is left alone.
func startDocker(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := docker(ctx, t, nil, "info"); err == nil {
		return
	} else if os.Getenv("DOCKER_HOST") != "" {
		t.Fatalf("compose: the Docker engine at DOCKER_HOST=%s does not answer: %v", os.Getenv("DOCKER_HOST"), err)
	}
	dockerd, err := sbinPath("dockerd")
	if err != nil {
		t.Fatalf("compose: no Docker engine answers and dockerd is not installed: run deploy/deps.sh (it installs docker.io docker-compose debootstrap)")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("compose: no Docker engine answers, and starting dockerd needs root (this test runs as uid %d)", os.Geteuid())
	}
	logPath := filepath.Join(t.TempDir(), "dockerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dockerd)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C of the test reaches it only
	// through the stop below; stopped if the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("compose: starting dockerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Logf("started dockerd (pid %d), log %s", cmd.Process.Pid, logPath)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("dockerd did not stop within a minute of SIGTERM; killed it")
		}
		logFile.Close()
	})
	engineUp := func() error {
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("dockerd exited (%v):\n%s", err, tail(string(b), 3000))
		default:
		}
		return nil
	}
	await.Eventually(t, "the Docker engine we started to answer", func() error {
		_, err := docker(ctx, t, nil, "info")
		return err
	}, await.Within(time.Minute), await.Every(500*time.Millisecond), await.While(engineUp))
}

// sbinPath finds an administrator's command, on PATH or in /usr/sbin,
// which a PATH may leave out.
func sbinPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return exec.LookPath(filepath.Join("/usr/sbin", name))
}

// imageLabel returns the value of label on image, and whether the image
// exists.
func imageLabel(t *testing.T, image, label string) (string, bool) {
	t.Helper()
	out, err := docker(context.Background(), t, nil, "image", "inspect", "--format", fmt.Sprintf("{{index .Config.Labels %q}}", label), image)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(out), true
}

// imageID returns the id of a local image.
func imageID(t *testing.T, image string) string {
	t.Helper()
	out, err := docker(context.Background(), t, nil, "image", "inspect", "--format", "{{.Id}}", image)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// standins builds the images the compose file names but this machine
// cannot pull, each only when it is missing or its inputs changed: a
// Debian bookworm base, a Go builder on it with this machine's toolchain,
// and Elasticsearch from the harness's jars.
func standins(t *testing.T) {
	t.Helper()
	start := time.Now()
	standinDebianImage(t)
	standinGolangImage(t)
	standinESImage(t)
	t.Logf("stand-in images ready in %v", time.Since(start).Round(100*time.Millisecond))
}

// standinDebianImage makes the Debian base with debootstrap --variant=minbase
// from the mirror apt uses on this machine, imported as an image.
func standinDebianImage(t *testing.T) {
	t.Helper()
	mirror := aptMirror()
	inputs := "debootstrap minbase bookworm " + mirror
	if got, ok := imageLabel(t, standinDebian, standinLabel); ok && got == inputs {
		return
	}
	debootstrap, err := sbinPath("debootstrap")
	if err != nil {
		t.Fatalf("compose: debootstrap is not installed: run deploy/deps.sh (it installs docker.io docker-compose debootstrap)")
	}
	start := time.Now()
	dir := filepath.Join(t.TempDir(), "rootfs")
	out, err := exec.Command(debootstrap, "--variant=minbase", "bookworm", dir, mirror).CombinedOutput()
	if err != nil {
		t.Fatalf("compose: debootstrap bookworm from %s: %v\n%s", mirror, err, tail(string(out), 3000))
	}
	// The downloaded packages and index files are not part of an image.
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"} {
		matches, _ := filepath.Glob(filepath.Join(dir, glob))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	tarCmd := exec.Command("tar", "--numeric-owner", "-C", dir, "-c", ".")
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tarCmd.Start(); err != nil {
		t.Fatal(err)
	}
	_, importErr := docker(context.Background(), t, pipe, "import",
		"--change", `CMD ["bash"]`, "--change", fmt.Sprintf("LABEL %s=%q", standinLabel, inputs), "-", standinDebian)
	if err := errors.Join(importErr, tarCmd.Wait()); err != nil {
		t.Fatalf("compose: importing the Debian root file system: %v", err)
	}
	t.Logf("built %s with debootstrap from %s in %v", standinDebian, mirror, time.Since(start).Round(100*time.Millisecond))
}

// aptMirror returns the Debian mirror apt uses on this machine, or
// deb.debian.org.
func aptMirror() string {
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			switch {
			case len(fields) >= 2 && fields[0] == "URIs:" && !strings.Contains(fields[1], "security"):
				return fields[1]
			case len(fields) >= 3 && fields[0] == "deb" && strings.HasPrefix(fields[1], "http") && !strings.Contains(fields[1], "security"):
				return fields[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// contextFile is one entry of a build context: its path in the context and
// either a file or folder on this machine or its contents.
type contextFile struct {
	name string
	path string
	data []byte
}

// buildStandin builds tag from a build context made of files, unless an
// image of that tag was built from the same inputs (inputs identifies
// them without reading every file).
func buildStandin(t *testing.T, tag, inputs string, files []contextFile) {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", inputs, imageID(t, standinDebian))
	for _, f := range files {
		fmt.Fprintf(h, "%s %d\n", f.name, len(f.data))
		h.Write(f.data)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if got, ok := imageLabel(t, tag, standinLabel); ok && got == sum {
		return
	}
	start := time.Now()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, files)) }()
	_, err := docker(context.Background(), t, pr, "build", "-q", "--label", standinLabel+"="+sum,
		"--build-arg", "DEBIAN_IMAGE="+standinDebian, "-t", tag, "-")
	pr.Close()
	if err != nil {
		t.Fatalf("compose: building the stand-in %s: %v", tag, err)
	}
	t.Logf("built %s in %v", tag, time.Since(start).Round(100*time.Millisecond))
}

// writeContext writes files as a tar stream, folders with everything in
// them.
func writeContext(w io.Writer, files []contextFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if f.path == "" {
			if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := tw.Write(f.data); err != nil {
				return err
			}
			continue
		}
		err := filepath.WalkDir(f.path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(f.path, p)
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			hdr.Name = filepath.ToSlash(filepath.Join(f.name, rel))
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// readRepoFile returns a file of the repository.
func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// standinGolangImage makes the Go builder: this machine's Go toolchain and
// CA bundle on the Debian base.
func standinGolangImage(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("compose: go env: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 {
		t.Fatalf("compose: go env GOROOT GOVERSION printed %q", out)
	}
	goroot, goVersion := lines[0], lines[1]
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("compose: the Go builder needs this machine's CA bundle: %v", err)
	}
	buildStandin(t, standinGolang, goVersion+" "+goroot, []contextFile{
		{name: "Dockerfile", data: readRepoFile(t, "deploy/compose/standin/golang/Dockerfile")},
		{name: "ca-certificates.crt", data: ca},
		{name: "go", path: goroot},
	})
}

// standinESImage makes Elasticsearch from the jars and launcher the test
// harness runs, with the harness's JVM flags.
func standinESImage(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	jars, err := devstack.Jars(ctx, "elasticsearch")
	if err != nil {
		t.Fatal(err)
	}
	marker, err := os.ReadFile(filepath.Join(jars, ".complete"))
	if err != nil {
		t.Fatal(err)
	}
	var lib []contextFile
	entries, err := os.ReadDir(jars)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".jar") {
			lib = append(lib, contextFile{name: "lib/" + e.Name(), path: filepath.Join(jars, e.Name())})
		}
	}
	flags := strings.Join(devstack.ElasticsearchJVMFlags("/usr/share/elasticsearch"), "\n") + "\n"
	files := append([]contextFile{
		{name: "Dockerfile", data: readRepoFile(t, "deploy/compose/standin/elasticsearch/Dockerfile")},
		{name: "es-standin.sh", data: readRepoFile(t, "deploy/compose/standin/elasticsearch/es-standin.sh")},
		{name: "jvm.options", data: []byte(flags)},
	}, lib...)
	buildStandin(t, standinES, "jars "+strings.TrimSpace(string(marker)), files)
}
