package output

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"

	"logpipe/pipeline/event"
)

// Console writes each event as one line of JSON to a writer (standard
// output, for `output.console`), and acknowledges it once written. It is
// for looking at what the shipper reads; it never drops an event, and a
// write error stops it.
type Console struct {
	// OnAck gets what Publish's register returned, once the event is
	// written.
	OnAck func(meta any)

	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
	err error
}

// NewConsole returns a Console writing to w.
func NewConsole(w io.Writer, onAck func(meta any)) *Console {
	return &Console{w: bufio.NewWriterSize(w, 64<<10), OnAck: onAck}
}

// Publish writes ev and acknowledges it. Lines from concurrent callers are
// never interleaved.
func (c *Console) Publish(ctx context.Context, ev *event.Event, fileKey string, register func() any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	meta := register()
	c.buf = append(ev.AppendJSON(c.buf[:0]), '\n')
	if _, err := c.w.Write(c.buf); err != nil {
		c.err = fmt.Errorf("output: console: %w", err)
		return c.err
	}
	if err := c.w.Flush(); err != nil {
		c.err = fmt.Errorf("output: console: %w", err)
		return c.err
	}
	if c.OnAck != nil {
		c.OnAck(meta)
	}
	return nil
}
