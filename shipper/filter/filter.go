// Package filter decides which events an input sends, by the
// include_lines and exclude_lines regular expressions of Filebeat.
package filter

import "regexp"

// Lines keeps an event when it matches one of Include (or Include is
// empty) and none of Exclude. The zero value keeps everything.
type Lines struct {
	Include []*regexp.Regexp
	Exclude []*regexp.Regexp
}

// Keep reports whether the event text passes the filter.
func (f *Lines) Keep(text []byte) bool {
	if len(f.Include) > 0 {
		ok := false
		for _, re := range f.Include {
			if re.Match(text) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, re := range f.Exclude {
		if re.Match(text) {
			return false
		}
	}
	return true
}
