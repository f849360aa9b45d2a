package output

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"

	"logpipe/shipper/publish"
)

// Console writes each event as one line of JSON to a writer (standard
// output, for `output.console`), and acknowledges it once written. It is
// for looking at what the shipper reads; it never drops an event, and a
// write error stops it.
type Console struct {
	// OnAck gets the acknowledgements of the events written.
	OnAck func(acks []publish.Ack)

	mu   sync.Mutex
	w    *bufio.Writer
	buf  []byte
	acks []publish.Ack
	err  error
}

// NewConsole returns a Console writing to w.
func NewConsole(w io.Writer, onAck func(acks []publish.Ack)) *Console {
	return &Console{w: bufio.NewWriterSize(w, 64<<10), OnAck: onAck}
}

// Publish writes b's events and acknowledges them. Lines from concurrent
// callers are never interleaved.
func (c *Console) Publish(ctx context.Context, b *publish.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	receipt := b.Register(b)
	c.acks = c.acks[:0]
	for i := range b.Events {
		if b.Events[i].Skip {
			continue
		}
		c.buf = append(b.Source.AppendJSON(c.buf[:0], b, i), '\n')
		if _, err := c.w.Write(c.buf); err != nil {
			c.err = fmt.Errorf("output: console: %w", err)
			return c.err
		}
		c.acks = append(c.acks, publish.Ack{Receipt: receipt, Index: i})
	}
	if err := c.w.Flush(); err != nil {
		c.err = fmt.Errorf("output: console: %w", err)
		return c.err
	}
	if c.OnAck != nil && len(c.acks) > 0 {
		c.OnAck(c.acks)
	}
	return nil
}
