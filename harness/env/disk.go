package env

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Disk faults. A dependency whose data must be able to fill up runs with
// that data on a small tmpfs the harness mounts (as root) before the
// server first starts: Redis's AOF directory, or PostgreSQL's data
// directory (its WAL and its log stay outside). FillDisk fills what is
// left of it with a ballast file, so that the server's next writes fail
// with ENOSPC; FreeDisk deletes the ballast. The mount is released when
// the environment closes, whatever happened before.

// ErrCannotMount is returned (wrapped, with the reason) when a disk of a
// given size cannot be made: not root, no tmpfs, or a backend that cannot
// do it. A scenario that needs one is then skipped, never passed.
var ErrCannotMount = errors.New("cannot mount")

// ballastName is the ballast file, at the root of the mount.
const ballastName = ".chronicle-ballast"

// maxLeftFree is how much a full disk may still have free after the fill
// (a few pages a server freed meanwhile): more, and the fill did not apply.
const maxLeftFree = 64 << 10

// disk is one small filesystem mounted for a node.
type disk struct {
	node string
	size int64

	mu      sync.Mutex // guards the fields below
	path    string     // mount point; "" until mounted
	ballast int64      // bytes of the ballast file (0: none)
}

// mount mounts a tmpfs of d.size bytes at path, owned by uid:gid with mode
// 0700 (PostgreSQL wants its data directory private). Errors wrap
// ErrCannotMount.
func (d *disk) mount(path string, uid, gid int) error {
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Errorf("%w: a tmpfs for %s needs root (euid %d)", ErrCannotMount, d.node, euid)
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("%w: mount point for %s: %v", ErrCannotMount, d.node, err)
	}
	opts := fmt.Sprintf("size=%d,mode=0700,uid=%d,gid=%d", d.size, uid, gid)
	if err := syscall.Mount("tmpfs", path, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("%w: mount -t tmpfs -o %s tmpfs %s: %v", ErrCannotMount, opts, path, err)
	}
	d.mu.Lock()
	d.path = path
	d.mu.Unlock()
	return nil
}

// release unmounts the disk (lazily if a process still holds it) and
// removes the mount point; a disk never mounted is a no-op.
func (d *disk) release() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.path == "" {
		return nil
	}
	path := d.path
	if err := syscall.Unmount(path, 0); err != nil {
		if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("env: unmount the disk of %s at %s: %w", d.node, path, err)
		}
	}
	d.path = ""
	_ = os.Remove(path)
	return nil
}

// free is the space left on the disk, in bytes.
func free(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// fill writes the ballast until the disk refuses more (ENOSPC), in ever
// smaller pieces so that not a page is left, and checks that the disk is
// full. It returns the ballast's size.
func (d *disk) fill() (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.path == "" {
		return 0, fmt.Errorf("env: fill the disk of %s: not mounted", d.node)
	}
	f, err := os.OpenFile(filepath.Join(d.path, ballastName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("env: fill the disk of %s: %w", d.node, err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for chunk := len(buf); chunk >= 512; chunk /= 4 {
		for {
			n, err := f.Write(buf[:chunk])
			d.ballast += int64(n)
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, io.ErrShortWrite) {
				break
			}
			if err != nil {
				return d.ballast, fmt.Errorf("env: fill the disk of %s: %w", d.node, err)
			}
		}
	}
	left, err := free(d.path)
	if err != nil {
		return d.ballast, fmt.Errorf("env: fill the disk of %s: statfs: %w", d.node, err)
	}
	if left > maxLeftFree {
		return d.ballast, fmt.Errorf("env: fill the disk of %s: %d bytes still free after a ballast of %d", d.node, left, d.ballast)
	}
	return d.ballast, nil
}

// empty deletes the ballast and checks that space came back.
func (d *disk) empty() (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.path == "" {
		return 0, fmt.Errorf("env: free the disk of %s: not mounted", d.node)
	}
	if err := os.Remove(filepath.Join(d.path, ballastName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("env: free the disk of %s: %w", d.node, err)
	}
	d.ballast = 0
	left, err := free(d.path)
	if err != nil {
		return 0, fmt.Errorf("env: free the disk of %s: statfs: %w", d.node, err)
	}
	if left == 0 {
		return 0, fmt.Errorf("env: free the disk of %s: still full after deleting the ballast", d.node)
	}
	return left, nil
}
