// Package cli parses the command line every logpipe binary shares:
//
//	NAME [-c FILE] [-E key=value]... [SUBCOMMAND ARGS...]
//	NAME --help | --version
//
// -c names the YAML config (none means built-in local defaults); -E
// overrides one key of it and may repeat, as in Filebeat. Anything after the
// flags (a subcommand and its own arguments) is returned untouched.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
)

// Version is the logpipe release, set at build time with
// -ldflags "-X logpipe/pipeline/cli.Version=...".
var Version = "0.1.0-dev"

// Program describes a binary for its --help text.
type Program struct {
	Name    string // binary name
	Summary string // one line on what it does
	// Subcommands lists "name  description" lines, if the binary has any.
	Subcommands []string
}

// Options is the parsed command line.
type Options struct {
	ConfigFile string   // -c
	Overrides  []string // -E, in order
	Args       []string // what follows the flags
}

// Parse parses args (without the program name). When it returns done, the
// caller should exit with code: after --help or --version (code 0, text on
// out) or a usage error (code 2, message on out).
func Parse(p Program, args []string, out io.Writer) (opts Options, done bool, code int) {
	fs := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&opts.ConfigFile, "c", "", "read the YAML config from `FILE` (default: built-in local settings)")
	fs.Func("E", "override a config key, as `key=value` (repeatable)", func(s string) error {
		if !strings.Contains(s, "=") {
			return errors.New("want key=value")
		}
		opts.Overrides = append(opts.Overrides, s)
		return nil
	})
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(out, "%s: %s\n\nUsage:\n  %s [-c FILE] [-E key=value]...", p.Name, p.Summary, p.Name)
		if len(p.Subcommands) > 0 {
			fmt.Fprint(out, " [COMMAND [ARGS...]]")
		}
		fmt.Fprint(out, "\n\nFlags:\n")
		fs.PrintDefaults()
		if len(p.Subcommands) > 0 {
			fmt.Fprint(out, "\nCommands (run `COMMAND --help` for each):\n")
			for _, s := range p.Subcommands {
				fmt.Fprintf(out, "  %s\n", s)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opts, true, 0
		}
		return opts, true, 2
	}
	if *version {
		fmt.Fprintf(out, "%s %s (%s %s/%s)\n", p.Name, Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return opts, true, 0
	}
	opts.Args = fs.Args()
	return opts, false, 0
}
