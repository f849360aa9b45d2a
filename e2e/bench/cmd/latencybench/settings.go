package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"logpipe/pipeline/config"
	"logpipe/shipper/output"
)

// setting is one configuration key and the value in effect.
type setting struct{ key, value string }

// flushSettings are the settings that decide how long a lone line waits on
// its way: the shipper's batching and the indexer's bulk requests.
type flushSettings struct {
	shipper []setting
	indexer []setting
}

// The indexer's bulk settings the report names. configs/indexer.yml sets
// each of them (to its default).
var indexerFlushKeys = []string{"elasticsearch.flush_interval", "elasticsearch.flush_bytes", "elasticsearch.workers"}

// effectiveFlush reads configs/shipper.yml and configs/indexer.yml with the
// run's extra settings (-shipper-set, -indexer-set; the benchmark's own
// overrides only name addresses and folders). The shipper's output
// settings are resolved by the shipper's own output package, so keys the
// file leaves out get the defaults the shipper gives them.
func effectiveFlush(root string, o *options) (flushSettings, error) {
	var fl flushSettings
	shipperYAML, err := os.ReadFile(filepath.Join(root, "configs", "shipper.yml"))
	if err != nil {
		return fl, fmt.Errorf("latencybench: %w", err)
	}
	keys, err := dottedKeys(shipperYAML, o.shipperSet)
	if err != nil {
		return fl, fmt.Errorf("latencybench: configs/shipper.yml: %w", err)
	}
	out, err := outputSettings(keys)
	if err != nil {
		return fl, err
	}
	fl.shipper = []setting{
		{"output.kafka.bulk_flush_frequency", out.BulkFlushFrequency.String()},
		{"output.kafka.bulk_max_size", fmt.Sprint(out.BulkMaxSize)},
		{"output.kafka.required_acks", fmt.Sprint(int(out.RequiredAcks))},
		{"output.kafka.compression", out.Compression.String()},
	}

	indexerYAML, err := os.ReadFile(filepath.Join(root, "configs", "indexer.yml"))
	if err != nil {
		return fl, fmt.Errorf("latencybench: %w", err)
	}
	if keys, err = dottedKeys(indexerYAML, o.indexerSet); err != nil {
		return fl, fmt.Errorf("latencybench: configs/indexer.yml: %w", err)
	}
	for _, k := range indexerFlushKeys {
		v, ok := keys[k]
		if !ok {
			return fl, fmt.Errorf("latencybench: configs/indexer.yml does not set %s", k)
		}
		fl.indexer = append(fl.indexer, setting{k, fmt.Sprint(v)})
	}
	return fl, nil
}

// outputSettings resolves the output.kafka keys among keys as the shipper
// does.
func outputSettings(keys map[string]any) (*output.Settings, error) {
	const prefix = "output.kafka."
	var overrides []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if sub, ok := strings.CutPrefix(k, prefix); ok {
			v, err := yaml.Marshal(keys[k])
			if err != nil {
				return nil, fmt.Errorf("latencybench: %s: %w", k, err)
			}
			overrides = append(overrides, sub+"="+string(v))
		}
	}
	var c output.Config
	if _, err := config.LoadBytes("output.kafka", nil, overrides, &c); err != nil {
		return nil, fmt.Errorf("latencybench: %w", err)
	}
	s, err := c.Resolve()
	if err != nil {
		return nil, fmt.Errorf("latencybench: %w", err)
	}
	return s, nil
}

// dottedKeys reads a YAML configuration and then -E style overrides
// (key=value, the value in YAML) into a map from dotted key to value, so
// that `a.b: 1` and `a: {b: 1}` give the same key, as logpipe's config
// package reads them. Lists and empty mappings are values.
func dottedKeys(text []byte, overrides []string) (map[string]any, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, err
	}
	out := map[string]any{}
	flatten("", doc, out)
	for _, ov := range overrides {
		k, v, ok := strings.Cut(ov, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", ov)
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			return nil, fmt.Errorf("-E %s: %w", ov, err)
		}
		k = strings.TrimSpace(k)
		maps.DeleteFunc(out, func(key string, _ any) bool { return key == k || strings.HasPrefix(key, k+".") })
		flatten(k, val, out)
	}
	return out, nil
}

// flatten adds v to out under key, or, when v is a non-empty mapping,
// each of its members under key.member.
func flatten(key string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		if key != "" {
			out[key] = v
		}
		return
	}
	for k, sub := range m {
		if key != "" {
			k = key + "." + k
		}
		flatten(k, sub, out)
	}
}
