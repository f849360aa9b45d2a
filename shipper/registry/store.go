package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"logpipe/shipper/fileid"
)

// FormatVersion is the version of the registry file's layout. Version 1:
//
//	{"version":1,"written":"<RFC 3339>","entries":[Entry...]}
//
// A reader refuses versions it does not know rather than guess.
const FormatVersion = 1

// Entry is one file's record in the registry file.
type Entry struct {
	fileid.Known
	// Path is where the file was last seen (for people; identity is
	// Known's).
	Path string `json:"path"`
	// Input is the id of the input that last found the file.
	Input string `json:"input,omitempty"`
	// Offset is the offset up to which every line has been acknowledged
	// by the broker: where a restart resumes.
	Offset int64 `json:"offset"`
	// Updated is when the file was last seen to change.
	Updated time.Time `json:"updated"`
}

type fileFormat struct {
	Version int       `json:"version"`
	Written time.Time `json:"written"`
	Entries []Entry   `json:"entries"`
}

// Load reads the registry file at path. A missing file is an empty
// registry; leftovers of an interrupted Save are removed.
func Load(path string) ([]Entry, error) {
	removeTemps(path)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("registry: %s is not a registry file (%v); move it away to start over, which reads every file again from its start", path, err)
	}
	if f.Version != FormatVersion {
		return nil, fmt.Errorf("registry: %s has format version %d, this shipper reads version %d", path, f.Version, FormatVersion)
	}
	for i, e := range f.Entries {
		if e.ID == "" || e.Offset < 0 || e.HeadLen < 0 || e.HeadLen > fileid.FingerprintSize {
			return nil, fmt.Errorf("registry: %s: entry %d is damaged: %+v", path, i, e)
		}
	}
	return f.Entries, nil
}

// tempPrefix starts the names of Save's temporary files, beside the
// registry file.
func tempPrefix(path string) string { return filepath.Base(path) + ".tmp-" }

func removeTemps(path string) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix(path)) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Save writes entries to path atomically and durably: to a temporary file
// in the same folder, synced, renamed over path, and the folder synced, so
// a crash leaves either the old file or the new one, whole.
func Save(path string, entries []Entry, now time.Time) error {
	if entries == nil {
		entries = []Entry{}
	}
	data, err := json.Marshal(fileFormat{Version: FormatVersion, Written: now.UTC(), Entries: entries})
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	tmp, err := os.CreateTemp(dir, tempPrefix(path))
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("registry: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("registry: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("registry: sync %s: %w", dir, err)
	}
	return nil
}
