package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// ApiVersions v0–v3. The answer is built from the registrations of every
// handler file, so it lists exactly what is implemented. (A version that is
// not served is answered by the wire layer with v0 and UNSUPPORTED_VERSION.)
func init() { register(18, 0, 3, handleAPIVersions) }

func handleAPIVersions(b *Broker, _ context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	return resp, nil
}
