package wire

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEnvelopeDataRoundTrip encodes a flexible and a non-flexible request
// and their answers as an envelope carries them and decodes them back.
func TestEnvelopeDataRoundTrip(t *testing.T) {
	for _, version := range []int16{1, 5} {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = version
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "logs", 3, 1
		req.Topics = append(req.Topics, rt)

		h, got, err := DecodeRequestData(EncodeRequestData(req, "shipper-1"))
		if err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		if h.APIKey != 19 || h.APIVersion != version || h.ClientID != "shipper-1" {
			t.Fatalf("v%d: header %+v, want CreateTopics v%d from shipper-1", version, h, version)
		}
		if !reflect.DeepEqual(got, req) {
			t.Fatalf("v%d: decoded request %+v, want %+v", version, got, req)
		}

		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic, st.ErrorCode = "logs", 29
		resp.Topics = append(resp.Topics, st)
		back, err := DecodeResponseData(req, EncodeResponseData(resp, 7))
		if err != nil {
			t.Fatalf("v%d response: %v", version, err)
		}
		if !reflect.DeepEqual(back, resp) {
			t.Fatalf("v%d: decoded response %+v, want %+v", version, back, resp)
		}
	}
	if _, _, err := DecodeRequestData([]byte{0, 1}); err == nil {
		t.Fatal("a truncated header decoded without error")
	}
}
