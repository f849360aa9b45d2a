package input

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxGlobDepth bounds how many folders one `**` may stand for, so a
// pattern over a deep tree cannot walk for ever.
const maxGlobDepth = 16

// glob is a compiled path pattern: filepath.Match segments, where a whole
// segment `**` matches any number of folders (zero included).
type glob struct {
	pattern string
	root    string   // "/" for absolute patterns, "." for relative ones
	segs    []string // the segments after root
}

func checkGlob(pattern string) error {
	_, err := compileGlob(pattern)
	return err
}

func compileGlob(pattern string) (*glob, error) {
	if pattern == "" {
		return nil, errors.New("input: empty path pattern")
	}
	clean := filepath.Clean(pattern)
	g := &glob{pattern: pattern, root: "."}
	if filepath.IsAbs(clean) {
		g.root = string(filepath.Separator)
		clean = strings.TrimLeft(clean, string(filepath.Separator))
	}
	if clean != "" && clean != "." {
		g.segs = strings.Split(clean, string(filepath.Separator))
	}
	if n := len(g.segs); n > 0 && g.segs[n-1] == "**" {
		// A trailing ** means every file below, at any depth.
		g.segs = append(g.segs, "*")
	}
	for _, s := range g.segs {
		if s == "**" {
			continue
		}
		if _, err := filepath.Match(s, ""); err != nil {
			return nil, fmt.Errorf("input: bad path pattern %q: %v", pattern, err)
		}
	}
	return g, nil
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// expand walks the file system for paths the pattern matches, calling
// match for each (files, folders and anything else alike; the caller
// sorts them out) and dir for every folder it looked into, which are the
// folders where a new match could appear. A path is reported once.
func (g *glob) expand(dir func(string), match func(string)) {
	seen := map[string]bool{}
	var walk func(path string, i, depth int)
	walk = func(path string, i, depth int) {
		if i == len(g.segs) {
			if !seen[path] {
				seen[path] = true
				match(path)
			}
			return
		}
		seg := g.segs[i]
		switch {
		case seg == "**":
			walk(path, i+1, depth) // zero folders
			if depth >= maxGlobDepth {
				return
			}
			ents, err := os.ReadDir(path)
			if err != nil {
				return
			}
			dir(path)
			for _, e := range ents {
				if e.IsDir() { // not following symbolic links: no loops
					walk(filepath.Join(path, e.Name()), i, depth+1)
				}
			}
		case !hasMeta(seg):
			if !isDir(path) {
				return
			}
			dir(path)
			next := filepath.Join(path, seg)
			if i == len(g.segs)-1 {
				if _, err := os.Lstat(next); err == nil {
					walk(next, i+1, depth)
				}
				return
			}
			walk(next, i+1, depth)
		default:
			ents, err := os.ReadDir(path)
			if err != nil {
				return
			}
			dir(path)
			for _, e := range ents {
				if ok, _ := filepath.Match(seg, e.Name()); !ok {
					continue
				}
				next := filepath.Join(path, e.Name())
				if i < len(g.segs)-1 && !isDir(next) {
					continue
				}
				walk(next, i+1, depth)
			}
		}
	}
	walk(g.root, 0, 0)
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// match reports whether path could be matched by the pattern, without
// looking at the file system.
func (g *glob) match(path string) bool {
	clean := filepath.Clean(path)
	if g.root == string(filepath.Separator) {
		if !filepath.IsAbs(clean) {
			return false
		}
		clean = strings.TrimLeft(clean, string(filepath.Separator))
	} else if filepath.IsAbs(clean) {
		return false
	}
	var parts []string
	if clean != "" && clean != "." {
		parts = strings.Split(clean, string(filepath.Separator))
	}
	return matchSegs(g.segs, parts)
}

func matchSegs(segs, parts []string) bool {
	for len(segs) > 0 {
		if segs[0] == "**" {
			for skip := 0; skip <= len(parts) && skip <= maxGlobDepth; skip++ {
				if matchSegs(segs[1:], parts[skip:]) {
					return true
				}
			}
			return false
		}
		if len(parts) == 0 {
			return false
		}
		if ok, _ := filepath.Match(segs[0], parts[0]); !ok {
			return false
		}
		segs, parts = segs[1:], parts[1:]
	}
	return len(parts) == 0
}
