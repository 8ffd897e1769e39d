package proc

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// Log is what one lifetime of a process wrote to a log file that every
// lifetime appends to: the file from Offset on.
type Log struct {
	Path   string
	Offset int64 // the file's size when the lifetime began
}

// LogFrom is the part of path that will be written from now on.
func LogFrom(path string) Log {
	l := Log{Path: path}
	if st, err := os.Stat(path); err == nil {
		l.Offset = st.Size()
	}
	return l
}

// tailBytes bounds how much of a log Tail reads.
const tailBytes = 64 << 10

// Tail returns the last n lines of the log (of at most its last 64 KiB),
// trimmed of surrounding white space; "" when there is none.
func (l Log) Tail(n int) string {
	if l.Path == "" {
		return ""
	}
	f, err := os.Open(l.Path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	offset := max(l.Offset, st.Size()-tailBytes, 0)
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// Contains reports whether the log contains s.
func (l Log) Contains(s string) bool {
	b, ok := l.read()
	return ok && bytes.Contains(b, []byte(s))
}

// ContainsFold reports whether the log contains s, ignoring case (Go's
// "address already in use" and Python's "Address already in use" alike).
func (l Log) ContainsFold(s string) bool {
	b, ok := l.read()
	return ok && bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(s)))
}

// read returns the log's bytes.
func (l Log) read() ([]byte, bool) {
	if l.Path == "" {
		return nil, false
	}
	b, err := os.ReadFile(l.Path)
	if err != nil || int64(len(b)) < l.Offset {
		return nil, false
	}
	return b[l.Offset:], true
}
