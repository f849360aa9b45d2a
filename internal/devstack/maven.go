package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Jars returns a folder holding every jar that deploy/maven/<name>/pom.xml
// resolves, fetching them from Maven Central the first time. The pom binds
// its copying to the package phase and writes into ${jars.dir}.
//
// The folder is <repo>/.cache/jars/<name>. A marker file holds the pom's
// hash, so an edited pom is resolved again. Concurrent test binaries are
// serialised by a file lock, so only one of them runs Maven.
func Jars(ctx context.Context, name string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	pom := filepath.Join(root, "deploy", "maven", name, "pom.xml")
	pomBytes, err := os.ReadFile(pom)
	if err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	sum := sha256.New()
	sum.Write(pomBytes)
	// Sources compiled by the pom (a launcher class) are part of its
	// identity: their paths inside the repository and their contents, so
	// that checkouts of the same sources (git worktrees sharing .cache)
	// agree.
	_ = filepath.WalkDir(filepath.Join(root, "deploy", "maven", name, "src"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, rerr := filepath.Rel(root, p)
			b, ferr := os.ReadFile(p)
			if rerr == nil && ferr == nil {
				sum.Write([]byte(rel))
				sum.Write(b)
			}
		}
		return nil
	})
	want := hex.EncodeToString(sum.Sum(nil))

	jarsRoot, err := CacheDir("jars")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(jarsRoot, name)
	marker := filepath.Join(dir, ".complete")

	lock, err := os.OpenFile(filepath.Join(jarsRoot, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("devstack: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	if got, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(got)) == want {
		return dir, nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("devstack: Maven (mvn) is not installed; run `make deps` (it installs maven and a JDK with apt-get) and retry")
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	cmd := exec.CommandContext(ctx, mvn, "-B", "-q", "-f", pom, "-Djars.dir="+dir, "package")
	cmd.Dir = filepath.Dir(pom)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("devstack: mvn package for %s failed: %w\n%s", pom, err, tailString(string(out), 6000))
	}
	if err := os.WriteFile(marker, []byte(want+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	return dir, nil
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// JavaPath returns the java executable to run services with, preferring
// $JAVA_HOME/bin/java, with a clear error when there is none.
func JavaPath() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("devstack: java is not installed; run `make deps` (it installs a JDK with apt-get) and retry")
	}
	return p, nil
}
