package producers

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Snapshot files are named like Kafka's, <20-digit offset>.snapshot, in
// the partition folder: the state after every batch below that offset.
// The content is ours (Kafka's is a binary schema): a version line, a
// CRC-32C line, then JSON. Format version 1.
const (
	snapshotSuffix  = ".snapshot"
	snapshotVersion = 1
	// keepSnapshots is how many snapshot files are kept.
	keepSnapshots = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SnapshotName returns the file name of the snapshot at offset.
func SnapshotName(offset int64) string { return fmt.Sprintf("%020d%s", offset, snapshotSuffix) }

// WriteSnapshot writes the state as of offset atomically (temporary file,
// fsync, rename, directory fsync) and deletes older snapshots beyond the
// newest keepSnapshots.
func WriteSnapshot(dir string, offset int64, s *State) error {
	body, err := json.Marshal(s.Producers())
	if err != nil {
		return fmt.Errorf("producers: %w", err)
	}
	content := fmt.Sprintf("%d\n%d\n%s", snapshotVersion, crc32.Checksum(body, castagnoli), body)
	path := filepath.Join(dir, SnapshotName(offset))
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("producers: %w", err)
	}
	if _, err = f.WriteString(content); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("producers: writing snapshot: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	offs, _ := snapshotOffsets(dir)
	for i := 0; i+keepSnapshots < len(offs); i++ {
		os.Remove(filepath.Join(dir, SnapshotName(offs[i])))
	}
	return nil
}

func snapshotOffsets(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), snapshotSuffix)
		if !ok || len(name) != 20 {
			continue
		}
		if n, err := strconv.ParseInt(name, 10, 64); err == nil {
			offs = append(offs, n)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	return offs, nil
}

// LoadSnapshot loads the newest valid snapshot at or below maxOffset into
// s and returns its offset; with none it returns -1 and leaves s empty.
// Snapshots above maxOffset (the log was cut shorter by recovery) and
// corrupt ones are deleted.
func LoadSnapshot(dir string, maxOffset int64, s *State) (int64, error) {
	offs, err := snapshotOffsets(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return -1, nil
		}
		return -1, fmt.Errorf("producers: %w", err)
	}
	for i := len(offs) - 1; i >= 0; i-- {
		path := filepath.Join(dir, SnapshotName(offs[i]))
		if offs[i] > maxOffset {
			os.Remove(path)
			continue
		}
		ps, err := readSnapshot(path)
		if err != nil {
			os.Remove(path)
			continue
		}
		s.Load(ps)
		return offs[i], nil
	}
	return -1, nil
}

func readSnapshot(path string) ([]Producer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ver, rest, ok1 := strings.Cut(string(b), "\n")
	sum, body, ok2 := strings.Cut(rest, "\n")
	if !ok1 || !ok2 || ver != strconv.Itoa(snapshotVersion) {
		return nil, errors.New("producers: unknown snapshot format")
	}
	if want, err := strconv.ParseUint(sum, 10, 32); err != nil || uint32(want) != crc32.Checksum([]byte(body), castagnoli) {
		return nil, errors.New("producers: snapshot checksum mismatch")
	}
	var ps []Producer
	if err := json.Unmarshal([]byte(body), &ps); err != nil {
		return nil, err
	}
	return ps, nil
}
