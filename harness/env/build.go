package env

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Building the service binary of this module for the local backend (the
// docker backend's image build is in docker_image.go).

const modulePath = "github.com/chronicleweaver/chronicleweaver"

var builds = struct {
	mu    sync.Mutex
	paths map[string]string // build tags -> binary
}{paths: map[string]string{}}

// serviceBinary returns binary if set, else a build of the service with
// tags placed in dir. The build runs once per process and set of tags; later
// calls hard-link (or copy) that file into their own dir, so that every
// Local owns its binary, and build again if it has gone.
func serviceBinary(ctx context.Context, binary string, tags []string, dir string, logf func(string, ...any)) (string, error) {
	if binary != "" {
		abs, err := filepath.Abs(binary)
		if err != nil {
			return "", fmt.Errorf("service binary: %w", err)
		}
		if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("service binary %s is not an executable file", abs)
		}
		return abs, nil
	}
	tags = append([]string(nil), tags...)
	sort.Strings(tags)
	key := strings.Join(tags, ",")
	name := "chronicleweaver"
	if key != "" {
		name += "-" + strings.ReplaceAll(key, ",", "-")
	}
	out := filepath.Join(dir, name)

	builds.mu.Lock()
	defer builds.mu.Unlock()
	if src, ok := builds.paths[key]; ok {
		if src == out {
			if _, err := os.Stat(out); err == nil {
				return out, nil
			}
		} else if err := linkOrCopy(src, out); err == nil {
			return out, nil
		}
		delete(builds.paths, key) // gone with its run folder: build again
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	if key != "" {
		args = append(args, "-tags", key)
	}
	args = append(args, "./service/cmd/chronicleweaver")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the service (go %s in %s; or set LocalOptions.Binary): %v\n%s", strings.Join(args, " "), root, err, bytes.TrimSpace(output))
	}
	if logf != nil {
		logf("env: built %s in %v", out, time.Since(start).Round(time.Millisecond))
	}
	builds.paths[key] = out
	return out, nil
}

// linkOrCopy makes dst the same file as src: a hard link, or a copy across
// file systems.
func linkOrCopy(src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return err
	}
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// moduleRoot finds this module's root above the working directory.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("build the service: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
					return d, nil
				}
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("build the service: module %s not found above %s: run inside it or set LocalOptions.Binary", modulePath, wd)
		}
	}
}
