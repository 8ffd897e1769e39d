package env

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/chronicleweaver/chronicleweaver/harness/subject"
)

// Foreign subjects' images: a base image per Debian suite and package set
// (harness/images/build-base.sh: debootstrap, no registry), and on it the
// checkout the user points at, copied in as it is. The source is never
// part of this repository: only the recipe (subjects/NAME.yaml) is.

// Checkout describes the source a foreign subject's image was built from.
type Checkout struct {
	Dir string `json:"dir"`
	// Commit is `git rev-parse HEAD` of the checkout ("" : not a git
	// checkout, e.g. an extracted archive).
	Commit string `json:"commit,omitempty"`
	// Digest is a hash of the checkout's files (paths and contents, .git
	// left out): the same files give the same digest.
	Digest string `json:"digest"`
}

// SubjectImage is a built (or found) image of a foreign subject.
type SubjectImage struct {
	Tag      string   `json:"tag"`
	Base     string   `json:"base"`
	Checkout Checkout `json:"checkout"`
	// Built says whether this call built it (else it was up to date), and
	// Seconds how long that took.
	Built   bool    `json:"built"`
	Seconds float64 `json:"seconds"`
}

// BaseImageTag is the tag of the base image of a Debian suite with a set
// of packages: chronicleweaver/base-SUITE:HASH, HASH from the suite and the
// sorted package names, so subjects listing the same set share one base.
func BaseImageTag(suite string, packages []string) string {
	ps := slices.Clone(packages)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	h := sha256.New()
	h.Write([]byte(suite))
	for _, p := range ps {
		h.Write([]byte("\n" + p))
	}
	return "chronicleweaver/base-" + suite + ":" + hex.EncodeToString(h.Sum(nil))[:12]
}

// BuildSubjectImage returns the image of foreign subject s built from the
// checkout at src: the base image of its suite and packages (built first
// when missing: a few minutes), then an image holding the checkout under
// /app, run from /app/RUN.DIR as image.user, tagged
// chronicleweaver/subject-NAME:HASH (HASH of the recipe and the checkout's
// files, so a change of either builds a new one) and
// chronicleweaver/subject-NAME:latest. Up-to-date images are reused.
// Concurrent builds on the machine wait for each other (flock).
func BuildSubjectImage(ctx context.Context, s *subject.Subject, src string, logf func(string, ...any)) (SubjectImage, error) {
	var img SubjectImage
	if s.Ours {
		return img, fmt.Errorf("env: subject %s is this module's service: its image is BuildServiceImage's", s.Name)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return img, fmt.Errorf("env: subject %s: checkout %s: %w", s.Name, src, err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return img, fmt.Errorf("env: subject %s: checkout %s is not a folder", s.Name, src)
	}
	if s.Run.Dir != "" {
		if st, err := os.Stat(filepath.Join(abs, s.Run.Dir)); err != nil || !st.IsDir() {
			return img, fmt.Errorf("env: subject %s: %s has no folder %s (run.dir): is it a checkout of %s?", s.Name, abs, s.Run.Dir, s.Upstream.Repository)
		}
	}
	logf = orNop(logf)
	start := time.Now()
	unlock, err := lockFile(filepath.Join(os.TempDir(), "chronicleweaver-build-subject.lock"), logf)
	if err != nil {
		return img, err
	}
	defer unlock()

	img.Checkout = Checkout{Dir: abs, Commit: gitCommit(ctx, abs)}
	files, digest, err := readTree(abs)
	if err != nil {
		return img, fmt.Errorf("env: subject %s: read checkout: %w", s.Name, err)
	}
	img.Checkout.Digest = digest
	img.Base = BaseImageTag(s.Image.Suite, s.Image.Packages)
	dockerfile := subjectDockerfile(img.Base, s)
	h := sha256.Sum256([]byte(dockerfile + "\n" + digest))
	img.Tag = "chronicleweaver/subject-" + s.Name + ":" + hex.EncodeToString(h[:])[:12]

	if ImageExists(ctx, img.Tag) {
		return img, tagLatest(ctx, img.Tag, s.Name)
	}
	if !ImageExists(ctx, img.Base) {
		if err := buildBase(ctx, s, img.Base, logf); err != nil {
			return img, err
		}
	}
	logf("env: building %s from %s (%d files)", img.Tag, abs, len(files))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(946684800, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", 0o644, []byte(dockerfile)); err != nil {
		return img, fmt.Errorf("env: subject image: %w", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(abs, f.path))
		if err != nil {
			return img, fmt.Errorf("env: subject image: %w", err)
		}
		mode := int64(0o644)
		if f.exec {
			mode = 0o755
		}
		if err := add("src/"+filepath.ToSlash(f.path), mode, data); err != nil {
			return img, fmt.Errorf("env: subject image: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return img, fmt.Errorf("env: subject image: %w", err)
	}
	cli, err := dockerClient()
	if err != nil {
		return img, err
	}
	defer cli.Close()
	labels := map[string]string{
		"chronicleweaver.subject":         s.Name,
		"chronicleweaver.subject.digest":  digest,
		"chronicleweaver.subject.commit":  img.Checkout.Commit,
		"chronicleweaver.subject.base":    img.Base,
		"org.opencontainers.image.source": s.Upstream.Repository,
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{img.Tag, latestTag(s.Name)}, Dockerfile: "Dockerfile", Remove: true, ForceRemove: true, Labels: labels,
	})
	if err != nil {
		return img, fmt.Errorf("env: subject %s: docker build: %w", s.Name, err)
	}
	defer res.Body.Close()
	if err := readBuildOutput(res.Body); err != nil {
		return img, fmt.Errorf("env: subject %s: docker build: %w", s.Name, err)
	}
	img.Built, img.Seconds = true, time.Since(start).Seconds()
	logf("env: built %s in %v", img.Tag, time.Since(start).Round(time.Second))
	return img, nil
}

// subjectDockerfile is the recipe of a subject's image on base.
func subjectDockerfile(base string, s *subject.Subject) string {
	dir := "/app"
	if s.Run.Dir != "" {
		dir = "/app/" + filepath.ToSlash(filepath.Clean(s.Run.Dir))
	}
	return fmt.Sprintf("FROM %s\nCOPY src/ /app/\nWORKDIR %s\nENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1\nUSER %s\n",
		base, dir, s.Image.User)
}

func latestTag(name string) string { return "chronicleweaver/subject-" + name + ":latest" }

// tagLatest points chronicleweaver/subject-NAME:latest at tag.
func tagLatest(ctx context.Context, tag, name string) error {
	cli, err := dockerClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: tag, Target: latestTag(name)}); err != nil {
		return fmt.Errorf("env: tag %s: %w", tag, err)
	}
	return nil
}

// buildBase runs harness/images/build-base.sh for s's suite and packages.
func buildBase(ctx context.Context, s *subject.Subject, tag string, logf func(string, ...any)) error {
	root, err := moduleRoot()
	if err != nil {
		return fmt.Errorf("env: %w", err)
	}
	script := filepath.Join(root, "harness", "images", "build-base.sh")
	logf("env: base image %s is missing: building it with %s (debootstrap of %s: a few minutes)", tag, script, s.Image.Suite)
	start := time.Now()
	cmd := exec.CommandContext(ctx, script, append([]string{s.Image.Suite, tag}, s.Image.Packages...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	logf("env: %s (%v):\n%s", filepath.Base(script), time.Since(start).Round(time.Second), bytes.TrimSpace(out))
	if err != nil {
		return fmt.Errorf("env: subject %s: base image %s: %s: %w", s.Name, tag, script, err)
	}
	return nil
}

type treeFile struct {
	path string
	exec bool
}

// readTree lists the regular files under dir (.git and __pycache__ left
// out, symlinks skipped) in path order and hashes their paths, modes and
// contents.
func readTree(dir string) ([]treeFile, string, error) {
	var files []treeFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "__pycache__") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, treeFile{path: rel, exec: info.Mode()&0o111 != 0})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(files, func(a, b treeFile) int { return strings.Compare(a.path, b.path) })
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%v\x00", filepath.ToSlash(f.path), f.exec)
		fh, err := os.Open(filepath.Join(dir, f.path))
		if err != nil {
			return nil, "", err
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return nil, "", err
		}
		h.Write([]byte{0})
	}
	return files, hex.EncodeToString(h.Sum(nil))[:16], nil
}

// gitCommit is `git rev-parse HEAD` in dir, or "" when dir is not a git
// checkout.
func gitCommit(ctx context.Context, dir string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD")
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	// The checkout must be dir itself, not a repository around it.
	top, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return ""
	}
	if t, _ := filepath.EvalSymlinks(strings.TrimSpace(string(top))); t != "" {
		if d, _ := filepath.EvalSymlinks(dir); d != t {
			return ""
		}
	}
	return strings.TrimSpace(string(out))
}

// lockFile takes an exclusive flock on path, waiting (and saying so) when
// another process holds it; the returned function releases it.
func lockFile(path string, logf func(string, ...any)) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("env: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		logf("env: another image build is running: waiting for it (%s)", path)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("env: lock %s: %w", path, err)
		}
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func orNop(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return logf
}
