package broker

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"logpipe/brokerd/sasl"
)

// overridable are the keys of SecurityConfig a listener may set for
// itself with listener.name.<listener>.<key>, as Kafka allows. A key
// giving a keystore's (or truststore's) certificates replaces the whole
// store: the base's other keys of that store are dropped on that
// listener.
var overridable = []string{
	"ssl.keystore.type",
	"ssl.keystore.location",
	"ssl.keystore.certificate.chain",
	"ssl.keystore.key",
	"ssl.truststore.type",
	"ssl.truststore.location",
	"ssl.truststore.certificates",
	"ssl.client.auth",
	"ssl.principal.mapping.rules",
	"ssl.endpoint.identification.algorithm",
	"ssl.enabled.protocols",
	"ssl.cipher.suites",
	"ssl.protocol",
	"sasl.enabled.mechanisms",
	"sasl.jaas.config",
	"connections.max.reauth.ms",
}

// overrideKey is the SecurityConfig key an override sets: Kafka writes a
// listener's JAAS line under its mechanism,
// "<mechanism in lower case>.sasl.jaas.config", which brokerd takes as
// sasl.jaas.config.
func overrideKey(key string) string {
	if mech, rest, ok := strings.Cut(key, "."); ok && rest == "sasl.jaas.config" && slices.Contains(sasl.Mechanisms, strings.ToUpper(mech)) {
		return rest
	}
	return key
}

// overridesOf returns listener's overrides: by the SecurityConfig key,
// the full key they were written as (for messages) and the value.
func (c *Config) overridesOf(listener string) map[string][2]string {
	out := map[string][2]string{}
	prefix := strings.ToLower(listener) + "."
	for key, v := range c.ListenerOverrides {
		if rest, ok := strings.CutPrefix(strings.ToLower(key), prefix); ok {
			out[overrideKey(rest)] = [2]string{"listener.name." + key, v}
		}
	}
	return out
}

// listenerSecurity is the security of listener: SecurityConfig with the
// listener's overrides applied. An override that does not parse is left
// out (validateOverrides reports it).
func (c *Config) listenerSecurity(listener string) SecurityConfig {
	s := c.Security
	ov := c.overridesOf(listener)
	replaces := func(store string) bool {
		return slices.ContainsFunc(slices.Collect(maps.Keys(ov)), func(k string) bool {
			return strings.HasPrefix(k, store) && k != store+"type"
		})
	}
	if replaces("ssl.keystore.") {
		s.SSLKeystoreLocation, s.SSLKeystoreCertificateChain, s.SSLKeystoreKey = "", "", ""
	}
	if replaces("ssl.truststore.") {
		s.SSLTruststoreLocation, s.SSLTruststoreCertificates = "", ""
	}
	for key, o := range ov {
		_ = setSecurityKey(&s, key, o[1])
	}
	return s
}

// setSecurityKey sets the field of s whose YAML key is key to v.
func setSecurityKey(s *SecurityConfig, key, v string) error {
	sv := reflect.ValueOf(s).Elem()
	for i := range sv.NumField() {
		if sv.Type().Field(i).Tag.Get("yaml") != key {
			continue
		}
		f := sv.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v)
		case reflect.Pointer:
			f.Set(reflect.ValueOf(&v))
		case reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, f.Type().Bits())
			if err != nil {
				return fmt.Errorf("want a whole number, got %q", v)
			}
			f.SetInt(n)
		default:
			return fmt.Errorf("cannot be set per listener")
		}
		return nil
	}
	return fmt.Errorf("unknown key")
}

// validateOverrides checks every listener.name.<listener>.<key>: the
// listener must be in listeners (or be the controller listener of a
// broker-only node), the key one of overridable, and the
// listener's resulting security valid. Errors name the override's key.
func (c *Config) validateOverrides(bad func(key, format string, args ...any)) {
	if len(c.ListenerOverrides) == 0 {
		return
	}
	names, _, err := splitListeners(c.Listeners)
	if err != nil {
		return // validateListeners reports it
	}
	known, also := names, ""
	if ctl := c.controllerListener(); c.brokerOnly() && !slices.Contains(names, ctl) {
		// A broker-only node has no controller listener, but dials the
		// controllers' with its settings, and takes the Raft streams
		// with them.
		known, also = append(slices.Clone(names), ctl), ", nor the controller listener "+ctl
	}
	overridden := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(c.ListenerOverrides)) {
		full := "listener.name." + key
		name, rest, ok := strings.Cut(key, ".")
		switch {
		case !ok || rest == "":
			bad(full, "want listener.name.<listener>.<key>")
		case !slices.Contains(known, strings.ToUpper(name)):
			bad(full, "unknown key: listener %s is not in listeners (%s)%s", strings.ToUpper(name), strings.Join(names, ", "), also)
		case !slices.Contains(overridable, overrideKey(rest)):
			bad(full, "unknown key: a listener may override %s", strings.Join(overridable, ", "))
		default:
			if err := setSecurityKey(&SecurityConfig{}, overrideKey(rest), c.ListenerOverrides[key]); err != nil {
				bad(full, "%v", err)
			}
			overridden[strings.ToUpper(name)] = true
		}
	}
	// A problem of the base settings is reported once, on its key; one
	// that only a listener's settings have is reported on the override,
	// or on the listener's name of the key when it comes of the mix.
	baseBad := map[string]bool{}
	c.Security.validate(func(key, _ string, _ ...any) { baseBad[key] = true })
	for _, name := range slices.Sorted(maps.Keys(overridden)) {
		ov := c.overridesOf(name)
		s := c.listenerSecurity(name)
		s.validate(func(key, format string, args ...any) {
			switch o, ok := ov[key]; {
			case ok:
				bad(o[0], format, args...)
			case !baseBad[key]:
				bad("listener.name."+strings.ToLower(name)+"."+key, format, args...)
			}
		})
	}
}
