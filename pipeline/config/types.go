package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var unmarshalerType = typeOf[yaml.Unmarshaler]()

// Duration is a time.Duration written in configs as Go duration text
// ("250ms", "10s", "5m", "1h30m"). A bare 0 means zero; any other bare
// number is refused because its unit would be a guess.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as Go duration text.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a duration such as 10s or 5m")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses duration text as Duration's YAML form does.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("duration %q needs a unit, such as %ss", s, s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a duration (want e.g. 500ms, 10s, 5m, 1h)", s)
	}
	return v, nil
}

// ByteSize is a count of bytes written in configs either as a plain integer
// or with a unit: B, KB, MB, GB, TB are powers of 1000 and KiB, MiB, GiB, TiB
// powers of 1024, as Filebeat reads them. Units are case-insensitive.
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a size such as 1048576 or 10MiB")
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	// Longest suffixes first so that "kib" is not read as "b".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// ParseByteSize parses size text as ByteSize's YAML form does.
func ParseByteSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if v, err := strconv.ParseInt(t, 10, 64); err == nil {
		if v < 0 {
			return 0, fmt.Errorf("size %q is negative", s)
		}
		return v, nil
	}
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f < 0 || math.IsNaN(f) || f*u.mult > math.MaxInt64 {
				break
			}
			return int64(f * u.mult), nil
		}
	}
	return 0, fmt.Errorf("cannot parse %q as a size (want e.g. 1048576, 512KiB, 10MiB, 1GB)", s)
}

// CommaList splits a list as Kafka's configurations write them ("a, b,c"):
// at its commas, with the blanks around each entry and empty entries
// dropped.
func CommaList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
