package tlsconfig

import (
	"crypto/tls"
	"fmt"
)

// beatSuites are the cipher suites by the names Filebeat's cipher_suites
// takes (its documentation's list; ECDHE-RSA-CHACHA20-POLY1205 is
// Filebeat's own spelling, taken beside the right one). Those Go counts
// insecure are refused by suiteIDs.
var beatSuites = map[string]uint16{
	"ECDHE-ECDSA-AES-128-CBC-SHA":    tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES-128-CBC-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-ECDSA-AES-128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES-256-CBC-SHA":    tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-ECDSA-AES-256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305":  tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-RC4-128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
	"ECDHE-RSA-3DES-CBC3-SHA":        tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	"ECDHE-RSA-AES-128-CBC-SHA":      tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES-128-CBC-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES-128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES-256-CBC-SHA":      tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES-256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-CHACHA20-POLY1305":    tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1205":    tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-RC4-128-SHA":          tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
	"RSA-3DES-CBC3-SHA":              tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	"RSA-AES-128-CBC-SHA":            tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"RSA-AES-128-CBC-SHA256":         tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	"RSA-AES-128-GCM-SHA256":         tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"RSA-AES-256-CBC-SHA":            tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	"RSA-AES-256-GCM-SHA384":         tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"RSA-RC4-128-SHA":                tls.TLS_RSA_WITH_RC4_128_SHA,
	"TLS-AES-128-GCM-SHA256":         tls.TLS_AES_128_GCM_SHA256,
	"TLS-AES-256-GCM-SHA384":         tls.TLS_AES_256_GCM_SHA384,
	"TLS-CHACHA20-POLY1305-SHA256":   tls.TLS_CHACHA20_POLY1305_SHA256,
}

// beatCurves are the key exchange groups by the names Filebeat's
// curve_types takes.
var beatCurves = map[string]tls.CurveID{
	"P-256":  tls.CurveP256,
	"P-384":  tls.CurveP384,
	"P-521":  tls.CurveP521,
	"X25519": tls.X25519,
}

// suiteIDs maps Filebeat's cipher suite names to Go's, refusing unknown
// names and the suites Go counts insecure.
func suiteIDs(names []string) ([]uint16, error) {
	var ids []uint16
	for _, n := range names {
		id, ok := beatSuites[n]
		switch {
		case !ok:
			return nil, fmt.Errorf("unknown cipher suite %q (Filebeat's names, such as ECDHE-ECDSA-AES-128-GCM-SHA256)", n)
		case insecure(id):
			return nil, fmt.Errorf("%s (%s) is insecure and not offered", n, tls.CipherSuiteName(id))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// curveIDs maps Filebeat's curve names to Go's.
func curveIDs(names []string) ([]tls.CurveID, error) {
	var ids []tls.CurveID
	for _, n := range names {
		id, ok := beatCurves[n]
		if !ok {
			return nil, fmt.Errorf("unknown curve %q (want P-256, P-384, P-521 or X25519)", n)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
