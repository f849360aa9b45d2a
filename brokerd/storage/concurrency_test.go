package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"logpipe/brokerd/recordbatch"
)

// TestConcurrentWriterReadersCleaner runs one writer (appends, rolls,
// retention), a cleaner and several readers on one log at once. Readers
// check every batch they get: CRC (a half-written batch would fail it),
// offset order, and that the batch holds or follows the requested offset
// and lies below the end they were told. It runs with the default file
// cache, and with one that keeps a single idle file open, so segment files
// are closed and opened again all the time under the readers.
func TestConcurrentWriterReadersCleaner(t *testing.T) {
	for _, maxOpen := range []int{0, 1} {
		t.Run(fmt.Sprintf("max open files %d", maxOpen), func(t *testing.T) {
			files := defaultFiles()
			if maxOpen > 0 {
				files = NewFileCache(FileCacheConfig{MaxOpen: maxOpen})
			}
			testConcurrentWriterReadersCleaner(t, files)
		})
	}
}

func testConcurrentWriterReadersCleaner(t *testing.T, files *FileCache) {
	clk := newClock()
	l, err := files.Open(partitionDir(t), Config{
		Clock: clk.Now, SegmentBytes: 3000, IndexIntervalBytes: 256,
		CleanupPolicy: PolicyCompactDelete, RetentionBytes: 30000, Retention: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	const batches = 600
	done := make(chan struct{})
	errs := make(chan error, 16)
	var wg sync.WaitGroup

	wg.Add(1)
	go func() { // writer
		defer wg.Done()
		defer close(done)
		for i := 0; i < batches; i++ {
			recs := make([]rec, 3)
			for j := range recs {
				recs[j] = kv(fmt.Sprintf("k%d", (i*3+j)%50), fmt.Sprintf("value %d", i), clk.Now().UnixMilli())
			}
			if _, _, err := l.AppendAsLeader(makeBatch(t, codecs[i%5], recs...), int32(i/100), clk.Now()); err != nil {
				errs <- fmt.Errorf("append %d: %w", i, err)
				return
			}
			if i%50 == 49 {
				if _, err := l.EnforceRetention(clk.Now(), l.LogEndOffset()); err != nil {
					errs <- fmt.Errorf("retention: %w", err)
					return
				}
			}
		}
	}()

	wg.Add(1)
	go func() { // cleaner
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := l.Compact(clk.Now(), l.LogEndOffset()); err != nil {
				errs <- fmt.Errorf("compact: %w", err)
				return
			}
		}
	}()

	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(seed uint64) { // reader
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for {
				select {
				case <-done:
					return
				default:
				}
				start, end := l.LogStartOffset(), l.LogEndOffset()
				off := start + rng.Int64N(end-start+1)
				if err := checkRead(l, off, 1+rng.IntN(8000)); err != nil {
					errs <- err
					return
				}
				l.OffsetForTimestamp(clk.Now().UnixMilli())
				l.EndOffsetForEpoch(int32(rng.IntN(6)))
			}
		}(uint64(r))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The final log is consistent: every key's latest value is there.
	latest := map[string]string{}
	for _, d := range readAll(t, l) {
		latest[d.Key] = d.Value
	}
	for k := 0; k < 50; k++ {
		if latest[fmt.Sprintf("k%d", k)] == "" {
			t.Errorf("key k%d lost", k)
		}
	}
}

func checkRead(l *Log, off int64, maxBytes int) error {
	r, err := l.Read(off, maxBytes)
	if errors.Is(err, ErrOffsetOutOfRange) {
		return nil // retention moved the start meanwhile
	}
	if err != nil {
		return err
	}
	defer r.Close()
	b, err := r.Bytes()
	if err != nil {
		return err
	}
	prev := int64(-1)
	for first := true; len(b) > 0; first = false {
		batch, rest, err := recordbatch.Next(b)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		h, err := recordbatch.Verify(batch)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if h.BaseOffset <= prev || h.BaseOffset >= r.LogEndOffset || (first && (h.LastOffset() < off || h.BaseOffset != r.FirstOffset)) {
			return fmt.Errorf("read at %d got batch %d..%d (prev %d, end %d)", off, h.BaseOffset, h.LastOffset(), prev, r.LogEndOffset)
		}
		prev = h.LastOffset()
		b = rest
	}
	return nil
}
