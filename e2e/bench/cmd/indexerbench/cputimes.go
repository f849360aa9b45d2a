package main

import (
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the machine's CPU time so far, over all CPUs, in seconds,
// from the first line of /proc/stat (in USER_HZ ticks of 1/100 s).
type cpuTimes struct {
	busy   float64 // user, nice, system: what processes account for
	intr   float64 // irq and softirq (loopback networking among others)
	idle   float64 // idle and iowait
	iowait float64 // of idle: waiting for I/O
	steal  float64 // taken by the hypervisor for other guests
}

// readCPUTimes reads /proc/stat; on a machine without it, all are zero.
func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	return parseCPUTimes(string(b))
}

// parseCPUTimes reads the "cpu" line of a /proc/stat text.
func parseCPUTimes(stat string) cpuTimes {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}
	}
	v := make([]float64, 8)
	for i := range v {
		n, _ := strconv.ParseFloat(f[i+1], 64)
		v[i] = n / 100
	}
	// user nice system idle iowait irq softirq steal
	return cpuTimes{
		busy:   v[0] + v[1] + v[2],
		intr:   v[5] + v[6],
		idle:   v[3] + v[4],
		iowait: v[4],
		steal:  v[7],
	}
}

// since returns the times spent between b and t.
func (t cpuTimes) since(b cpuTimes) cpuTimes {
	return cpuTimes{busy: t.busy - b.busy, intr: t.intr - b.intr, idle: t.idle - b.idle, iowait: t.iowait - b.iowait, steal: t.steal - b.steal}
}
