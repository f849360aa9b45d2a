package kafkaname

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, want string // want: "" for accepted, else part of the error
	}{
		{"httpd", ""},
		{"a.B_c-9", ""},
		{strings.Repeat("x", MaxLen), ""},
		{"", "topic name is empty"},
		{".", `topic name cannot be "."`},
		{"..", `topic name cannot be ".."`},
		{strings.Repeat("x", MaxLen+1), "longer than 249 characters"},
		{"a b", `topic name "a b" has a character other than`},
		{"a/b", "has a character other than"},
		{"é", "has a character other than"},
	} {
		err := Check("topic name", tc.name)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Check(%q) = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Check(%q) = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
