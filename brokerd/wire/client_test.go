package wire

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRequestPooled: a response read into a pooled frame decodes as
// Request's does, request after request on one connection; a frame over
// MaxResponseBytes and a frame cut short are errors that still hand back
// a release to call.
func TestRequestPooled(t *testing.T) {
	h := &echoHandler{}
	_, addr := startServer(t, h, 1<<20)
	c, err := Dial(addr, "t", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(8)
		req.Acks = -1
		for _, topic := range []string{"a", "b"} {
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			for p := range int32(i + 1) {
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition = p
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		kresp, release, err := c.RequestPooled(req, time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp := kresp.(*kmsg.ProduceResponse)
		if len(resp.Topics) != 2 || resp.Topics[1].Topic != "b" || len(resp.Topics[1].Partitions) != i+1 {
			t.Fatalf("request %d: got %+v, want topics a and b with %d partitions each", i, resp.Topics, i+1)
		}
		release()
	}

	for _, tc := range []struct {
		name   string
		answer []byte
		want   string
	}{
		{"over MaxResponseBytes", binary.BigEndian.AppendUint32(nil, 2<<20), "response frame of 2097152 bytes"},
		{"cut short", append(binary.BigEndian.AppendUint32(nil, 100), 0, 0, 0, 1), "reading the Metadata response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				var size [4]byte
				if _, err := conn.Read(size[:]); err == nil {
					conn.Write(tc.answer)
				}
			}()
			cl, err := Dial(ln.Addr().String(), "t", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			cl.MaxResponseBytes = 1 << 20
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(1)
			resp, release, err := cl.RequestPooled(req, time.Now().Add(10*time.Second))
			if err == nil || !strings.Contains(err.Error(), tc.want) || resp != nil || release == nil {
				t.Fatalf("got response %v, release %v, error %v; want no response, a release and an error with %q", resp, release != nil, err, tc.want)
			}
			release()
		})
	}
}
