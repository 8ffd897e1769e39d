package env

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// The docker backend's images and daemon: which PostgreSQL and Redis
// images to use (official or the offline look-alikes), building those and
// the service's image.

// Images. The official images are what online users pull; the offline ones
// are what harness/images/build-offline.sh builds where no registry can be
// reached.
const (
	DefaultPostgresImage = "postgres:17-bookworm"
	DefaultRedisImage    = "redis:7-bookworm"
	OfflinePostgresImage = "chronicleweaver/postgres:15-offline"
	OfflineRedisImage    = "chronicleweaver/redis:7-offline"
	DefaultServiceImage  = "chronicleweaver:local"
)

// Environment variables naming the images (read by compose.yml too).
const (
	EnvPostgresImage = "CHRONICLE_POSTGRES_IMAGE"
	EnvRedisImage    = "CHRONICLE_REDIS_IMAGE"
	EnvServiceImage  = "CHRONICLE_SERVICE_IMAGE"
)

// dockerClient connects to the daemon named by the environment (DOCKER_HOST
// etc.), negotiating the API version.
func dockerClient() (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("env: docker client: %w", err)
	}
	return cli, nil
}

// DockerAvailable reports whether a Docker daemon answers a ping within 2 s.
func DockerAvailable(ctx context.Context) bool {
	cli, err := dockerClient()
	if err != nil {
		return false
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err == nil
}

// ImageExists reports whether the daemon has image locally.
func ImageExists(ctx context.Context, image string) bool {
	cli, err := dockerClient()
	if err != nil {
		return false
	}
	defer cli.Close()
	return imageExists(ctx, cli, image)
}

func imageExists(ctx context.Context, cli *client.Client, image string) bool {
	_, err := cli.ImageInspect(ctx, image)
	return err == nil
}

// DefaultImages returns the PostgreSQL and Redis images to use: the
// CHRONICLE_POSTGRES_IMAGE / CHRONICLE_REDIS_IMAGE variables when set, else
// the official image when it is present locally, else the offline
// look-alike (OfflinePostgresImage / OfflineRedisImage, or
// CHRONICLE_OFFLINE_POSTGRES / CHRONICLE_OFFLINE_REDIS as for
// build-offline.sh) when that is, else the official image (to be pulled).
func DefaultImages(ctx context.Context) (postgres, redis string) {
	cli, err := dockerClient()
	if err != nil {
		return pickImage(ctx, nil, EnvPostgresImage, DefaultPostgresImage, OfflinePostgresImage),
			pickImage(ctx, nil, EnvRedisImage, DefaultRedisImage, OfflineRedisImage)
	}
	defer cli.Close()
	return pickImage(ctx, cli, EnvPostgresImage, DefaultPostgresImage, OfflinePostgresImage),
		pickImage(ctx, cli, EnvRedisImage, DefaultRedisImage, OfflineRedisImage)
}

func pickImage(ctx context.Context, cli *client.Client, envVar, official, offline string) string {
	if v := strings.TrimSpace(os.Getenv(envVar)); v != "" {
		return v
	}
	// build-offline.sh's tags can be renamed as well.
	offlineVar := map[string]string{EnvPostgresImage: "CHRONICLE_OFFLINE_POSTGRES", EnvRedisImage: "CHRONICLE_OFFLINE_REDIS"}[envVar]
	offline = cmp.Or(strings.TrimSpace(os.Getenv(offlineVar)), offline)
	if cli == nil || imageExists(ctx, cli, official) || !imageExists(ctx, cli, offline) {
		return official
	}
	return offline
}

// EnsureImages returns DefaultImages after making sure they are present:
// when one is neither set through its variable nor present locally
// (official or offline), harness/images/build-offline.sh builds the offline
// images (a few minutes; needs root and a reachable Debian archive). Tests
// call it so that they run on a machine without a registry.
func EnsureImages(ctx context.Context, logf func(string, ...any)) (postgres, redis string, err error) {
	postgres, redis = DefaultImages(ctx)
	var missing []string
	for _, im := range []struct{ envVar, image string }{{EnvPostgresImage, postgres}, {EnvRedisImage, redis}} {
		if os.Getenv(im.envVar) == "" && !ImageExists(ctx, im.image) {
			missing = append(missing, im.image)
		}
	}
	if len(missing) == 0 {
		return postgres, redis, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", fmt.Errorf("env: %w", err)
	}
	script := filepath.Join(root, "harness", "images", "build-offline.sh")
	if logf != nil {
		logf("env: %s and no offline look-alike present: running %s", strings.Join(missing, ", "), script)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if logf != nil {
		logf("env: %s (%v):\n%s", filepath.Base(script), time.Since(start).Round(time.Second), bytes.TrimSpace(out))
	}
	if err != nil {
		return "", "", fmt.Errorf("env: %s: %w", script, err)
	}
	postgres, redis = DefaultImages(ctx)
	return postgres, redis, nil
}

var serviceImages = struct {
	mu   sync.Mutex
	done map[string]bool // tags built by this process
}{done: map[string]bool{}}

// BuildServiceImage builds the service image of service/Dockerfile from this
// module's source and tags it: `go build` of the static binary
// (CGO_ENABLED=0), then a docker build whose context holds only that binary
// (as `make build` + `docker build -f service/Dockerfile bin` do). It runs
// once per process and tag.
func BuildServiceImage(ctx context.Context, tag string, logf func(string, ...any)) error {
	serviceImages.mu.Lock()
	defer serviceImages.mu.Unlock()
	if serviceImages.done[tag] {
		return nil
	}
	root, err := moduleRoot()
	if err != nil {
		return fmt.Errorf("env: %w", err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "service", "Dockerfile"))
	if err != nil {
		return fmt.Errorf("env: service image: %w", err)
	}
	dir, err := os.MkdirTemp("", "chronicle-image-")
	if err != nil {
		return fmt.Errorf("env: service image: %w", err)
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	bin := filepath.Join(dir, "chronicleweaver")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./service/cmd/chronicleweaver")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("env: service image: go build: %v\n%s", err, bytes.TrimSpace(out))
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("env: service image: %w", err)
	}
	built := time.Now()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"chronicleweaver", 0o755, binary}} {
		// A fixed time: the build cache then hits when the files are the same.
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(946684800, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("env: service image: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("env: service image: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("env: service image: %w", err)
	}
	cli, err := dockerClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: "Dockerfile", Remove: true, ForceRemove: true,
		Labels: map[string]string{"org.opencontainers.image.title": "chronicleweaver"},
	})
	if err != nil {
		return fmt.Errorf("env: service image: docker build: %w", err)
	}
	defer res.Body.Close()
	if err := readBuildOutput(res.Body); err != nil {
		return fmt.Errorf("env: service image: docker build: %w", err)
	}
	if logf != nil {
		logf("env: built image %s in %v (go build %v, docker build %v)", tag, time.Since(start).Round(time.Millisecond),
			built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	}
	serviceImages.done[tag] = true
	return nil
}

// readBuildOutput drains a build's JSON message stream and returns its
// error, with the last lines of output for context.
func readBuildOutput(r io.Reader) error {
	dec := json.NewDecoder(r)
	var lines []string
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			lines = append(lines, s)
			if len(lines) > 10 {
				lines = lines[1:]
			}
		}
		if m.Error != "" || m.ErrorDetail.Message != "" {
			msg := m.ErrorDetail.Message
			if msg == "" {
				msg = m.Error
			}
			return fmt.Errorf("%s\n%s", msg, strings.Join(lines, "\n"))
		}
	}
}
