package env

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A disk is a tmpfs the fill leaves with no room for a write, the empty
// gives room back, and release unmounts. Needs root: elsewhere the mount
// must fail with ErrCannotMount, never succeed silently.
func TestDiskFillAndEmpty(t *testing.T) {
	t.Parallel()
	d := &disk{node: Redis, size: 2 << 20}
	path := filepath.Join(t.TempDir(), "mnt")
	err := d.mount(path, os.Geteuid(), os.Getegid())
	if os.Geteuid() != 0 {
		if !errors.Is(err, ErrCannotMount) {
			t.Fatalf("mount as non-root: %v, want ErrCannotMount", err)
		}
		t.Skipf("mounting needs root: %v", err)
	}
	if err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := d.release(); err != nil {
			t.Error(err)
		}
	})
	write := func() error { return os.WriteFile(filepath.Join(path, "data"), make([]byte, 64<<10), 0o600) }
	if err := write(); err != nil {
		t.Fatalf("write before the fill: %v", err)
	}
	n, err := d.fill()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1<<20 || n > 2<<20 {
		t.Fatalf("ballast of %d bytes on a 2 MiB disk holding 64 KiB", n)
	}
	f, err := os.OpenFile(filepath.Join(path, "more"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(make([]byte, 64<<10))
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v, want ENOSPC", err)
	}
	left, err := d.empty()
	if err != nil {
		t.Fatal(err)
	}
	if left < 1<<20 {
		t.Fatalf("%d bytes free after the empty, want the ballast back", left)
	}
	if err := os.WriteFile(filepath.Join(path, "after"), make([]byte, 64<<10), 0o600); err != nil {
		t.Fatalf("write after the empty: %v", err)
	}
	if err := d.release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("mount point left after release: %v", err)
	}
}
