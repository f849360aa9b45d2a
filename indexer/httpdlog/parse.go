package httpdlog

import (
	"errors"
	"time"
)

// ErrNoMatch is matched (errors.Is) by every error the parsers return: the
// line fits no httpd log format this package knows.
var ErrNoMatch = errors.New("httpdlog: line matches no httpd log format")

// syntaxError says which part of a line failed to parse. Its values are
// package-level, so refusing a line allocates nothing.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

// Is makes every syntaxError match ErrNoMatch.
func (e *syntaxError) Is(target error) bool { return target == ErrNoMatch }

func newSyntaxError(msg string) error { return &syntaxError{"httpdlog: " + msg} }

// Kind names the format family a line was parsed as.
type Kind uint8

// The kinds of line Parse tells apart.
const (
	// KindNone is a line that fits no format.
	KindNone Kind = iota
	// KindAccess is an access log line; the Access result is filled.
	KindAccess
	// KindError is an error log line; the Error result is filled.
	KindError
)

// String returns "none", "access" or "error".
func (k Kind) String() string {
	switch k {
	case KindAccess:
		return "access"
	case KindError:
		return "error"
	}
	return "none"
}

// Parse parses line as whichever kind of httpd log line it is, choosing by
// its first byte: every error line starts with '[', an access line does only
// when its virtual host is a bracketed IPv6 address, so a line starting with
// '[' that is no error line is tried as an access line. loc is the location
// error-log times are read in (nil means UTC); a and e must not be nil. On
// success the result of the returned kind is filled (the other may have been
// reset to zero by a failed try); on failure Parse returns KindNone and the
// error, matching ErrNoMatch, of the format the first byte pointed to.
func Parse(line string, loc *time.Location, a *Access, e *Error) (Kind, error) {
	if len(line) > 0 && line[0] == '[' {
		err := ParseError(line, loc, e)
		if err == nil {
			return KindError, nil
		}
		if ParseAccess(line, a) == nil {
			return KindAccess, nil
		}
		return KindNone, err
	}
	if err := ParseAccess(line, a); err != nil {
		return KindNone, err
	}
	return KindAccess, nil
}
