package main

import (
	"errors"
	"fmt"
	"time"

	"logpipe/pipeline/config"
	"logpipe/pipeline/telemetry"
	"logpipe/shipper/input"
	"logpipe/shipper/output"
)

// Defaults of the shipper's top-level keys.
const (
	defaultDataPath        = "data"
	defaultRegistryFlush   = time.Second
	defaultShutdownTimeout = 5 * time.Second
	defaultQueueEvents     = 8192
	defaultQueueBytes      = 16 << 20
)

// settings is the shipper's YAML configuration, as Filebeat users write
// theirs: inputs under filebeat.inputs (or the legacy filebeat.prospectors),
// output.kafka, path.data, logging.*, http.*.
type settings struct {
	telemetry.Config `yaml:",inline"`

	// Name is the host name put in events (host.name) and used in their
	// ids; default: the machine's host name.
	Name string `yaml:"name"`

	Filebeat struct {
		Inputs      []input.Config `yaml:"inputs"`
		Prospectors []input.Config `yaml:"prospectors"`
		// Registry is Filebeat's filebeat.registry.* spelling.
		Registry struct {
			Path  string          `yaml:"path"`
			Flush config.Duration `yaml:"flush"`
		} `yaml:"registry"`
		ShutdownTimeout config.Duration `yaml:"shutdown_timeout"`
	} `yaml:"filebeat"`

	Output struct {
		Kafka output.Config `yaml:"kafka"`
	} `yaml:"output"`

	Path struct {
		// Data holds the registry (default ./data).
		Data string `yaml:"data"`
	} `yaml:"path"`

	Registry struct {
		// Flush is the longest the registry file lags the acknowledged
		// offsets (default 1s); 0 writes after every acknowledgement batch.
		Flush *config.Duration `yaml:"flush"`
	} `yaml:"registry"`

	// ShutdownTimeout is how long SIGTERM waits for the broker to
	// acknowledge what was sent (default 5s).
	ShutdownTimeout *config.Duration `yaml:"shutdown_timeout"`

	Queue struct {
		Mem struct {
			// Events and Bytes bound what is read but not yet acknowledged;
			// when either is reached, reading waits (default 4096, 16MiB).
			Events int             `yaml:"events"`
			Bytes  config.ByteSize `yaml:"bytes"`
		} `yaml:"mem"`
	} `yaml:"queue"`

	// MemoryLimit is the Go runtime's soft memory limit: near it the
	// garbage collector runs more often, which keeps the resident size
	// down. Default: twice queue.mem.bytes plus 16MiB, room for what the
	// queue holds, the requests in flight and the read buffers; 0 turns
	// it off. The GOMEMLIMIT environment variable wins over it.
	MemoryLimit *config.ByteSize `yaml:"memory_limit"`
}

// defaultSettings are the settings with no config file: the inputs are
// empty and the output points at a local brokerd.
func defaultSettings() *settings {
	s := &settings{}
	s.Output.Kafka.Hosts = []string{"127.0.0.1:9092"}
	s.Output.Kafka.Topic = "logs"
	return s
}

// resolved are the effective settings.
type resolved struct {
	Inputs          []*input.Settings
	Output          *output.Settings
	DataPath        string
	RegistryFlush   time.Duration
	ShutdownTimeout time.Duration
	QueueEvents     int
	QueueBytes      int64
	MemoryLimit     int64 // 0: none
}

// Validate checks the top-level keys; the sections check their own.
func (s *settings) Validate() error {
	_, err := s.resolve()
	return err
}

// resolve applies defaults and checks the keys this level owns.
func (s *settings) resolve() (*resolved, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, config.Errorf(key, format, args...))
	}
	r := &resolved{
		DataPath:        s.Path.Data,
		RegistryFlush:   defaultRegistryFlush,
		ShutdownTimeout: defaultShutdownTimeout,
		QueueEvents:     s.Queue.Mem.Events,
		QueueBytes:      int64(s.Queue.Mem.Bytes),
	}
	if r.DataPath == "" {
		r.DataPath = defaultDataPath
	}
	if s.Filebeat.Registry.Path != "" {
		bad("filebeat.registry.path", "the registry lives in path.data; set path.data instead")
	}
	if s.Registry.Flush != nil {
		r.RegistryFlush = s.Registry.Flush.D()
		if s.Filebeat.Registry.Flush != 0 {
			bad("filebeat.registry.flush", "is another spelling of registry.flush; set only one")
		}
	} else if s.Filebeat.Registry.Flush != 0 {
		r.RegistryFlush = s.Filebeat.Registry.Flush.D()
	}
	if r.RegistryFlush < 0 {
		bad("registry.flush", "must not be negative")
	}
	if s.ShutdownTimeout != nil {
		r.ShutdownTimeout = s.ShutdownTimeout.D()
		if s.Filebeat.ShutdownTimeout != 0 {
			bad("filebeat.shutdown_timeout", "is another spelling of shutdown_timeout; set only one")
		}
	} else if s.Filebeat.ShutdownTimeout != 0 {
		r.ShutdownTimeout = s.Filebeat.ShutdownTimeout.D()
	}
	if r.ShutdownTimeout < 0 {
		bad("shutdown_timeout", "must not be negative")
	}
	if r.QueueEvents == 0 {
		r.QueueEvents = defaultQueueEvents
	} else if r.QueueEvents < 0 {
		bad("queue.mem.events", "must be positive")
	}
	if r.QueueBytes == 0 {
		r.QueueBytes = defaultQueueBytes
	}
	r.MemoryLimit = 2*r.QueueBytes + 16<<20
	if s.MemoryLimit != nil {
		r.MemoryLimit = int64(*s.MemoryLimit) // config.ByteSize refuses negative sizes
	}

	ids := map[string]string{}
	add := func(key string, list []input.Config) {
		for i := range list {
			in, err := list[i].Resolve()
			if err != nil {
				continue // reported by the input's own Validate
			}
			if !in.Enabled {
				continue
			}
			k := fmt.Sprintf("%s[%d]", key, i)
			if in.ID != "" {
				if prev, dup := ids[in.ID]; dup {
					bad(k+".id", "id %q is also used by %s", in.ID, prev)
				}
				ids[in.ID] = k
			} else {
				in.ID = k
			}
			r.Inputs = append(r.Inputs, in)
		}
	}
	add("filebeat.inputs", s.Filebeat.Inputs)
	add("filebeat.prospectors", s.Filebeat.Prospectors)

	out, err := s.Output.Kafka.Resolve()
	if err == nil {
		r.Output = out
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}
