// Package benchkit holds what the benchmark commands share: watching a
// process's memory and CPU time, describing the machine, and writing a
// section of docs/benchmarks.md.
package benchkit

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcStatusKB returns a "kB" field of /proc/<pid>/status, such as VmRSS
// (resident memory now) or VmHWM (its peak since the process started).
func ProcStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("benchkit: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("benchkit: %s of pid %d: %w", field, pid, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("benchkit: no %s in /proc/%d/status", field, pid)
}

// CPUSeconds returns the user plus system CPU time the process has used,
// from /proc/<pid>/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("benchkit: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("benchkit: unreadable /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("benchkit: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("benchkit: unreadable times in /proc/%d/stat", pid)
	}
	return float64(ut+st) / 100, nil
}

// MemWatch samples a process's resident memory until stopped, so the peak
// survives even if the process's own VmHWM could not be read at the end.
type MemWatch struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	peakKB  int64
	cpuSecs float64
}

// WatchMemory starts sampling pid every 250 ms until Finish.
func WatchMemory(pid int) *MemWatch {
	w := &MemWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *MemWatch) sample() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, field := range []string{"VmHWM", "VmRSS"} {
		if kb, err := ProcStatusKB(w.pid, field); err == nil {
			w.peakKB = max(w.peakKB, kb)
		}
	}
	if s, err := CPUSeconds(w.pid); err == nil {
		w.cpuSecs = s
	}
}

// Finish takes a last sample and returns the peak resident memory in KiB
// and the CPU seconds the process has used.
func (w *MemWatch) Finish() (peakKB int64, cpuSecs float64) {
	close(w.stop)
	<-w.done
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peakKB, w.cpuSecs
}

// Machine describes where a benchmark ran.
type Machine struct {
	CPUs     int    // logical CPUs
	CPUModel string // from /proc/cpuinfo
	MemTotal string // such as "23.5 GiB"
	Kernel   string // such as "Linux 6.1.0"
	GoVer    string // the Go toolchain that built the benchmark
	FranzGo  string // franz-go's module version in the benchmark's build
}

// DescribeMachine reads the machine's CPUs, memory, kernel and build.
func DescribeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVer: runtime.Version(), CPUModel: "unknown", MemTotal: "unknown", Kernel: "unknown", FranzGo: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, err := meminfoKB("MemTotal"); err == nil {
		m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/twmb/franz-go" {
				m.FranzGo = d.Version
			}
		}
	}
	return m
}

func meminfoKB(field string) (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("benchkit: no %s in /proc/meminfo", field)
}

// LoadAverage returns the 1-, 5- and 15-minute load averages.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
