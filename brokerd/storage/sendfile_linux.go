//go:build linux

package storage

import (
	"io"
	"os"
	"syscall"
)

// sendFile copies n bytes of f from pos to w with sendfile(2) when w is a
// socket. The explicit offset leaves f's shared file position alone, so
// concurrent readers of the same segment do not interfere. handled is
// false when w cannot take this path.
func sendFile(w io.Writer, f *os.File, pos, n int64) (written int64, handled bool, err error) {
	if _, isFile := w.(*os.File); isFile {
		return 0, false, nil
	}
	sc, ok := w.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	dst, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	src, err := f.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var werr error
	cerr := src.Control(func(infd uintptr) {
		err := dst.Write(func(outfd uintptr) bool {
			for written < n {
				m, e := syscall.Sendfile(int(outfd), int(infd), &pos, int(min(n-written, 1<<30)))
				if m > 0 {
					written += int64(m)
				}
				switch {
				case e == syscall.EAGAIN:
					return false // wait until the socket is writable
				case e == syscall.EINTR:
				case e != nil:
					werr = e
					return true
				case m == 0:
					werr = io.ErrUnexpectedEOF // the file is shorter than the range
					return true
				}
			}
			return true
		})
		if werr == nil {
			werr = err
		}
	})
	if werr == nil {
		werr = cerr
	}
	if errno, ok := werr.(syscall.Errno); ok {
		werr = os.NewSyscallError("sendfile", errno)
	}
	return written, true, werr
}
