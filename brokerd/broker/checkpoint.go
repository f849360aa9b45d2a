package broker

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// HWCheckpointFile is the file in each log dir that keeps the high
// watermarks of the partitions in it, in Kafka's format (version 0, a
// count, then "topic partition offset" lines), so that a restarted
// broker does not show consumers less than was committed before, nor
// more than its followers have.
const HWCheckpointFile = "replication-offset-checkpoint"

// readHWCheckpoints reads every log dir's checkpoint; a missing or
// unreadable one counts as empty (the high watermarks then start at 0
// and move up as followers fetch, or at once for a sole replica).
func readHWCheckpoints(dirs []string) map[tp]int64 {
	out := map[tp]int64{}
	for _, d := range dirs {
		f, err := os.Open(filepath.Join(d, HWCheckpointFile))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for line := 0; sc.Scan(); line++ {
			if line < 2 {
				continue
			}
			fs := strings.Fields(sc.Text())
			if len(fs) != 3 {
				continue
			}
			part, err1 := strconv.ParseInt(fs[1], 10, 32)
			off, err2 := strconv.ParseInt(fs[2], 10, 64)
			if err1 == nil && err2 == nil {
				out[tp{fs[0], int32(part)}] = off
			}
		}
		f.Close()
	}
	return out
}

// checkpointedHW returns the high watermark read at start for k, or 0.
func (b *Broker) checkpointedHW(k tp) int64 { return b.hwCheckpoint[k] }

// checkpointHWs writes the high watermarks every few seconds while they
// change, and once more at Close.
func (b *Broker) checkpointHWs() {
	defer b.wg.Done()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	var last map[tp]int64
	for {
		select {
		case <-b.quit:
			b.writeHWCheckpoints(nil)
			return
		case <-t.C:
			last = b.writeHWCheckpoints(last)
		}
	}
}

// writeHWCheckpoints writes each log dir's checkpoint if anything changed
// since last (nil: always) and returns what it wrote.
func (b *Broker) writeHWCheckpoints(last map[tp]int64) map[tp]int64 {
	now := map[tp]int64{}
	byDir := map[string][]string{}
	for _, p := range b.hosted() {
		hw := p.hw.Load()
		now[tp{p.topic, p.index}] = hw
		dir := filepath.Dir(p.log.Dir())
		byDir[dir] = append(byDir[dir], fmt.Sprintf("%s %d %d", p.topic, p.index, hw))
	}
	if last != nil && maps.Equal(now, last) {
		return last
	}
	for _, d := range b.cfg.Dirs() {
		lines := byDir[d]
		body := fmt.Sprintf("0\n%d\n%s", len(lines), strings.Join(lines, "\n"))
		if len(lines) > 0 {
			body += "\n"
		}
		path := filepath.Join(d, HWCheckpointFile)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err == nil {
			err = os.Rename(tmp, path)
			if err != nil {
				b.log.Warn("writing the high watermark checkpoint", "path", path, "err", err)
			}
		} else {
			b.log.Warn("writing the high watermark checkpoint", "path", path, "err", err)
		}
	}
	return now
}
