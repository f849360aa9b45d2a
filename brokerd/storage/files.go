package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// File names inside a partition folder.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	cleanedSuffix   = ".cleaned"
	tmpSuffix       = ".tmp"

	// epochCheckpointName is Kafka's leader-epoch-checkpoint.
	epochCheckpointName = "leader-epoch-checkpoint"
	// logStartCheckpointName holds this partition's log start offset in
	// the format of Kafka's log-dir-level log-start-offset-checkpoint, with
	// one entry. Kafka keeps one such file per log directory; brokerd keeps
	// one per partition folder so a Log owns all its files.
	logStartCheckpointName = "log-start-offset-checkpoint"
	// cleanShutdownName marks a log closed cleanly: Open then trusts the
	// active segment's indexes and checks only the batches after their
	// last entry. Kafka has one such marker per log directory
	// (.kafka_cleanshutdown); here each partition folder has its own, so
	// a partition that was not opened since a crash (moved away, or
	// failing to open) is still recovered when it is opened later.
	cleanShutdownName = "clean-shutdown"
	// swapManifestName records a compaction swap in progress; see
	// compact.go.
	swapManifestName = "cleaner-swap"
)

// segmentName returns the file name of a segment file: the base offset as
// 20 decimal digits followed by suffix.
func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

// parseSegmentName returns the base offset of a file named
// <20 digits><suffix>.
func parseSegmentName(name, suffix string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseTopicPartition splits a partition folder name "<topic>-<partition>".
func parseTopicPartition(dir string) (string, int32, error) {
	name := filepath.Base(dir)
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, fmt.Errorf("storage: folder %q is not named <topic>-<partition>", name)
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, fmt.Errorf("storage: folder %q is not named <topic>-<partition>", name)
	}
	return name[:i], int32(p), nil
}

// Kafka's checkpoint files are text: a version line ("0"), a line with the
// number of entries, then one entry per line with space-separated fields.

// encodeCheckpoint renders entries in Kafka's checkpoint format.
func encodeCheckpoint(entries [][]string) []byte {
	var b bytes.Buffer
	b.WriteString("0\n")
	b.WriteString(strconv.Itoa(len(entries)))
	b.WriteByte('\n')
	for _, e := range entries {
		b.WriteString(strings.Join(e, " "))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// readCheckpoint parses dir/name; each entry must have nfields fields.
// A missing file yields no entries and ok=false.
func readCheckpoint(files *FileCache, dir, name string, nfields int) (entries [][]string, ok bool, err error) {
	data, err := files.readFile(filepath.Join(dir, name))
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: %s: %s", ErrCorruptLog, name, why)
	}
	v, ok := line()
	if !ok || v != "0" {
		return nil, false, bad("unknown version " + strconv.Quote(v))
	}
	c, ok := line()
	n, err := strconv.Atoi(c)
	if !ok || err != nil || n < 0 {
		return nil, false, bad("bad entry count " + strconv.Quote(c))
	}
	for i := 0; i < n; i++ {
		l, ok := line()
		if !ok {
			return nil, false, bad(fmt.Sprintf("%d entries announced, %d found", n, i))
		}
		f := strings.Fields(l)
		if len(f) != nfields {
			return nil, false, bad("bad entry " + strconv.Quote(l))
		}
		entries = append(entries, f)
	}
	return entries, true, nil
}
