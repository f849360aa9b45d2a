package harness

import "strings"

// Field returns the value at a dotted path ("http.response.status_code")
// of a document's source decoded into maps, or nil if there is none.
func Field(src map[string]any, path string) any {
	var cur any = src
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}
