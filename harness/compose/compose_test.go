package compose

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/gen"
)

// stack is one Compose project of compose.yml.
type stack struct {
	t       *testing.T
	cli     []string // "docker compose" or "docker-compose"
	root    string   // the repository
	project string
	env     []string // the commands' environment
}

// composeCLI returns the Compose command of this machine: `docker compose`
// (v2) if it answers, else `docker-compose` (v1).
func composeCLI() ([]string, error) {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, nil
	}
	if exec.Command("docker-compose", "version").Run() == nil {
		return []string{"docker-compose"}, nil
	}
	return nil, fmt.Errorf("neither `docker compose` nor `docker-compose` works: install one (Debian: apt-get install docker-compose)")
}

// run runs a compose subcommand and returns its output; it fails the test
// on error unless allowFail.
func (s *stack) run(ctx context.Context, allowFail bool, args ...string) string {
	s.t.Helper()
	return s.exec(ctx, allowFail, true, args...)
}

// exec is run, logging the command when verbose.
func (s *stack) exec(ctx context.Context, allowFail, verbose bool, args ...string) string {
	s.t.Helper()
	full := append([]string{}, s.cli[1:]...)
	full = append(full, "-f", filepath.Join(s.root, "compose.yml"), "-p", s.project)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, s.cli[0], full...)
	cmd.Dir = s.root
	cmd.Env = s.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if verbose {
		s.t.Logf("$ %s %s  (%v)", strings.Join(s.cli, " "), strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	}
	if err != nil && !allowFail {
		s.t.Fatalf("%s %s: %v\n%s", strings.Join(s.cli, " "), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// waitHealthy polls the project's containers until every one is running and
// healthy (the three have health checks).
func (s *stack) waitHealthy(ctx context.Context, limit time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	last := ""
	for {
		ids := strings.Fields(s.exec(ctx, true, false, "ps", "-q"))
		if len(ids) == 3 {
			out, err := exec.CommandContext(ctx, "docker", append([]string{"inspect", "-f",
				"{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"}, ids...)...).Output()
			if err == nil {
				last = strings.TrimSpace(string(out))
				healthy := 0
				for _, line := range strings.Split(last, "\n") {
					f := strings.Fields(line)
					if len(f) == 3 && f[1] == "running" && f[2] == "healthy" {
						healthy++
					}
					if len(f) == 3 && (f[1] == "exited" || f[1] == "dead" || f[2] == "unhealthy") {
						s.t.Fatalf("container %s is %s/%s\n%s", f[0], f[1], f[2], s.run(context.Background(), true, "logs", "--tail", "40"))
					}
				}
				if healthy == 3 {
					s.t.Logf("all 3 containers healthy after %v", time.Since(start).Round(time.Millisecond))
					return
				}
			}
		} else {
			last = fmt.Sprintf("%d containers", len(ids))
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("not healthy within %v (last: %s)\n%s", limit, last, s.run(context.Background(), true, "logs", "--tail", "40"))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "compose.yml")); err == nil {
				return d
			}
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no compose.yml above %s", dir)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// eventsCount reads GET /events?limit=1 and returns its count.
func eventsCount(ctx context.Context, base string) (int64, error) {
	var page struct {
		Count int64 `json:"count"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?limit=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /events: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return 0, fmt.Errorf("GET /events: %w", err)
	}
	return page.Count, nil
}

var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}

// TestComposeSmoke brings compose.yml up under a project of its own on a
// free port, publishes 1,000 events of which 300 are duplicates, restarts
// the service container and checks that nothing was lost; it takes the
// stack down with its volumes at the end (in t.Cleanup too).
func TestComposeSmoke(t *testing.T) {
	ctx := context.Background()
	if !env.DockerAvailable(ctx) {
		t.Skip("no Docker daemon answers (docker version): the compose smoke test needs one")
	}
	testStart := time.Now()
	withTimeout := func(ctx context.Context, d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return ctx
	}
	cli, err := composeCLI()
	if err != nil {
		t.Fatal(err)
	}
	root := moduleRoot(t)
	id := randomID()
	s := &stack{t: t, cli: cli, root: root, project: "cwsmoke" + id}
	t.Logf("compose CLI: %s; project %s", strings.Join(cli, " "), s.project)

	// Images: PostgreSQL and Redis (the offline look-alikes are built when
	// no image is present), then the service image through compose.yml's
	// build section, from bin/chronicleweaver as `make build` makes it.
	start := time.Now()
	pg, rd, err := env.EnsureImages(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("step images: %s, %s (%v)", pg, rd, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(root, "bin", "chronicleweaver"), "./service/cmd/chronicleweaver")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("step go build bin/chronicleweaver: %v", time.Since(start).Round(time.Millisecond))

	port := freePort(t)
	serviceImage := "chronicleweaver:smoke-" + id
	s.env = append(os.Environ(),
		"CHRONICLE_POSTGRES_IMAGE="+pg,
		"CHRONICLE_REDIS_IMAGE="+rd,
		"CHRONICLE_SERVICE_IMAGE="+serviceImage,
		"CHRONICLE_PORT="+strconv.Itoa(port),
	)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", s.run(context.Background(), true, "logs", "--tail", "60"))
		}
		s.run(context.Background(), true, "down", "-v", "--remove-orphans", "-t", "10")
		_ = exec.Command("docker", "image", "rm", serviceImage).Run()
		s.assertNothingLeft()
	})

	start = time.Now()
	s.run(ctx, false, "build", "service")
	t.Logf("step service image %s built: %v", serviceImage, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	s.run(ctx, false, "up", "-d")
	s.waitHealthy(ctx, 3*time.Minute)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	c := &client.Client{Base: base, HTTP: httpClient}
	if _, err := c.WaitReady(withTimeout(ctx, time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Logf("step up: ready on %s in %v", base, time.Since(start).Round(time.Millisecond))

	// 1,000 events, 30% duplicates, 10 per request.
	cfg := gen.Config{Seed: 42, RunID: "smoke-" + id, Events: 1000, DuplicateRatio: 0.3, Topics: 5, EventsPerRequest: 10}
	src, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	unique := int64(cfg.Events - cfg.Duplicates())
	start = time.Now()
	reqs := src.All()
	for _, r := range reqs {
		if status, _, err := c.Publish(withTimeout(ctx, 30*time.Second), r.Body); err != nil {
			t.Fatalf("publish request %d: %d %v", r.Seq, status, err)
		}
	}
	t.Logf("step publish: %d requests, %d events (%d distinct) in %v", len(reqs), cfg.Events, unique, time.Since(start).Round(time.Millisecond))

	want := checker.Stats{Received: int64(cfg.Events), UniqueProcessed: unique, DuplicatedDropped: int64(cfg.Events) - unique}
	check := func(step string) {
		t.Helper()
		st, took, err := c.WaitDrained(withTimeout(ctx, 2*time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if st.Received != want.Received || st.UniqueProcessed != want.UniqueProcessed || st.DuplicatedDropped != want.DuplicatedDropped || st.DeadLettered != 0 {
			t.Fatalf("%s: /stats %+v, want received %d, unique_processed %d, duplicated_dropped %d", step, st, want.Received, want.UniqueProcessed, want.DuplicatedDropped)
		}
		n, err := eventsCount(withTimeout(ctx, 30*time.Second), base)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if n != unique {
			t.Fatalf("%s: GET /events count %d, want %d", step, n, unique)
		}
		keys, err := c.StoredKeysAPI(withTimeout(ctx, time.Minute), cfg.EventIDPrefix())
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for k, n := range keys {
			if n != 1 {
				t.Fatalf("%s: %v stored %d times", step, k, n)
			}
		}
		if int64(len(keys)) != unique {
			t.Fatalf("%s: %d distinct keys walked through GET /events, want %d", step, len(keys), unique)
		}
		t.Logf("step %s: drained in %v; /stats received %d, unique_processed %d, duplicated_dropped %d; GET /events count %d",
			step, took.Round(time.Millisecond), st.Received, st.UniqueProcessed, st.DuplicatedDropped, n)
	}
	check("check after publish")

	start = time.Now()
	s.run(ctx, false, "restart", "service")
	s.waitHealthy(ctx, 2*time.Minute)
	if _, err := c.WaitReady(withTimeout(ctx, time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Logf("step restart service: ready again in %v", time.Since(start).Round(time.Millisecond))
	check("check after restart")

	start = time.Now()
	s.run(ctx, false, "down", "-v", "--remove-orphans")
	s.assertNothingLeft()
	t.Logf("step down -v: %v", time.Since(start).Round(time.Millisecond))
	t.Logf("compose smoke test: %v in all", time.Since(testStart).Round(time.Millisecond))
}

// assertNothingLeft checks that no container, network or volume of the
// project is left.
func (s *stack) assertNothingLeft() {
	s.t.Helper()
	label := "label=com.docker.compose.project=" + s.project
	for _, args := range [][]string{
		{"ps", "-aq", "--filter", label},
		{"network", "ls", "-q", "--filter", label},
		{"volume", "ls", "-q", "--filter", label},
	} {
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			s.t.Errorf("docker %s: %v", strings.Join(args, " "), err)
		} else if left := strings.Fields(string(out)); len(left) > 0 {
			s.t.Errorf("left behind after down -v (docker %s): %v", strings.Join(args[:2], " "), left)
		}
	}
}
