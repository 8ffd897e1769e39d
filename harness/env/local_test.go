package env

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/internal/proc"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var testHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// call sends a request with a timeout and returns the status and body.
func call(ctx context.Context, method, url string, body any, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// eventually polls cond until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		<-time.After(delay)
	}
}

func readyIs(ctx context.Context, target string, want int) func() error {
	return func() error {
		code, body, err := call(ctx, http.MethodGet, target+"/ready", nil, 3*time.Second)
		if err != nil {
			return err
		}
		if code != want {
			return fmt.Errorf("/ready %d %s, want %d", code, bytes.TrimSpace(body), want)
		}
		return nil
	}
}

func uniqueProcessedIs(ctx context.Context, target string, want int64) func() error {
	return func() error {
		code, body, err := call(ctx, http.MethodGet, target+"/stats", nil, 3*time.Second)
		if err != nil {
			return err
		}
		var st struct {
			UniqueProcessed int64 `json:"unique_processed"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
			return fmt.Errorf("/stats %d %s", code, body)
		}
		if st.UniqueProcessed != want {
			return fmt.Errorf("unique_processed = %d, want %d", st.UniqueProcessed, want)
		}
		return nil
	}
}

func publish(t *testing.T, ctx context.Context, target, id string) {
	t.Helper()
	ts := "2025-01-02T03:04:05Z"
	body := map[string]any{"events": []map[string]any{{
		"event_id": id, "topic": "env-test", "source": "harness/env", "timestamp": ts,
		"payload": map[string]any{"message": "hello", "timestamp": ts},
	}}}
	code, resp, err := call(ctx, http.MethodPost, target+"/publish", body, 5*time.Second)
	if err != nil || code != http.StatusOK {
		t.Fatalf("publish %s: %d %s %v", id, code, resp, err)
	}
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.Protocol = 2
	opt.DisableIdentity = true
	opt.MaxRetries = -1
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// addMarker appends one entry to a test stream and waits until Redis has
// written its AOF buffer (so a SIGKILL cannot lose it when AOF is on).
func addMarker(t *testing.T, ctx context.Context, c *redis.Client) {
	t.Helper()
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "env-test:marker", Values: []any{"k", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "AOF buffer written", func() error {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "aof_buffer_length:0") && strings.Contains(info, "aof_enabled:1") {
			return errors.New("AOF buffer not yet written")
		}
		return nil
	})
}

func markerLen(t *testing.T, ctx context.Context, c *redis.Client) int64 {
	t.Helper()
	n, err := c.XLen(ctx, "env-test:marker").Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// step runs one stage and logs how long it took.
func step(t *testing.T, name string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("%-42s %v", name, time.Since(start).Round(time.Millisecond))
}

func startLocal(t *testing.T, ctx context.Context, o LocalOptions) *Local {
	t.Helper()
	o.RunDir = t.TempDir()
	o.Logf = t.Logf
	l, err := StartLocal(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(o.RunDir, "service-0.log"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("service-0.log (end):\n%s", b)
		}
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l
}

func TestLocal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	var l *Local
	step(t, "start (build, postgres, redis, 1 service)", func() {
		l = startLocal(t, ctx, LocalOptions{
			Services: 1,
			Proxy:    true,
			Settings: map[string]string{"WORKER_COUNT": "2", "SHUTDOWN_TIMEOUT": "5s", "API_TOKEN": ""},
		})
	})
	target := l.Targets()[0]
	svc := ServiceNode(0)
	if want := []string{"service-0", "redis", "postgres"}; fmt.Sprint(l.Nodes()) != fmt.Sprint(want) {
		t.Errorf("Nodes() = %v, want %v", l.Nodes(), want)
	}
	info := l.Info()
	if info.Backend != "local" || info.Services != 1 || !strings.HasPrefix(info.PostgresVersion, "PostgreSQL ") ||
		!strings.HasPrefix(info.RedisVersion, "Redis ") || info.Settings["WORKER_COUNT"] != "2" ||
		info.Settings["LOG_LEVEL"] != "info" || info.RedisPersistence != "aof always" || !info.Proxied {
		t.Errorf("Info() = %+v", info)
	}
	if log, err := l.ServiceLog(ctx, svc); err != nil || !strings.Contains(string(log), `"msg":"serving"`) {
		t.Errorf("ServiceLog(%s): %d bytes, %v; want the service's JSON log", svc, len(log), err)
	}
	if _, err := l.ServiceLog(ctx, Redis); err == nil {
		t.Errorf("ServiceLog(redis): no error; only service nodes have a service log")
	}
	for k := range info.Settings {
		if strings.HasSuffix(k, "_URL") {
			t.Errorf("Info().Settings has %s", k)
		}
	}
	if info.Settings["API_TOKEN"] != "(redacted)" {
		t.Errorf("Info().Settings[API_TOKEN] = %q", info.Settings["API_TOKEN"])
	}
	if !strings.HasPrefix(l.DatabaseURL(), "postgres://") || !strings.Contains(l.DatabaseURL(), "/chronicle?") {
		t.Errorf("DatabaseURL() = %q", l.DatabaseURL())
	}

	step(t, "publish one event, processed", func() {
		publish(t, ctx, target, "e1")
		eventually(t, 15*time.Second, "event e1 processed", uniqueProcessedIs(ctx, target, 1))
	})

	// One port registry for the services and the servers: every port is
	// in it, once.
	ports := map[string]int{svc: portOf(t, target), Postgres: portOf(t, l.DatabaseURL()), Redis: portOf(t, l.RedisURL())}
	checkReserved := func(when string) {
		t.Helper()
		seen := map[int]string{}
		for node, port := range ports {
			if !proc.PortReserved(port) {
				t.Errorf("%s: port %d of %s not in the port registry", when, port, node)
			}
			if other, dup := seen[port]; dup {
				t.Errorf("%s: %s and %s share port %d", when, node, other, port)
			}
			seen[port] = node
		}
	}
	checkReserved("after start")

	step(t, "kill + restart service-0, usage", func() {
		cpu0, _, err := l.Usage(svc)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Kill(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if _, _, err := call(ctx, http.MethodGet, target+"/health", nil, time.Second); err == nil {
			t.Fatal("/health answered after Kill")
		}
		// Down, service-0 keeps its port: no server started meanwhile can
		// be given it.
		checkReserved("service-0 killed")
		if p, err := proc.ReservePort(); err != nil || p == ports[svc] {
			t.Errorf("a reservation while service-0 is down got %d, %v (service-0 holds %d)", p, err, ports[svc])
		} else {
			proc.ReleasePorts(p)
		}
		if err := l.Pause(ctx, svc); err == nil {
			t.Error("Pause of a killed service succeeded")
		}
		if err := l.Restart(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if err := readyIs(ctx, target, http.StatusOK)(); err != nil {
			t.Fatalf("after Restart: %v", err)
		}
		cpu, rss, err := l.Usage(svc)
		if err != nil || cpu <= 0 || rss <= 0 || cpu < cpu0 {
			t.Fatalf("Usage = %v s, %d B, %v (before the kill: %v s)", cpu, rss, err, cpu0)
		}
		t.Logf("usage of %s: %.2f s CPU, peak RSS %d MiB", svc, cpu, rss>>20)
	})

	rc := redisClient(t, l.RedisURL())
	step(t, "kill + restart redis (AOF keeps the stream)", func() {
		addMarker(t, ctx, rc)
		if err := l.Kill(ctx, Redis); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "/ready 503 without redis", readyIs(ctx, target, http.StatusServiceUnavailable))
		if err := l.Restart(ctx, Redis); err != nil {
			t.Fatal(err)
		}
		if n := markerLen(t, ctx, rc); n != 1 {
			t.Fatalf("marker stream has %d entries after kill + restart, want 1", n)
		}
		eventually(t, 15*time.Second, "/ready 200 after redis restart", readyIs(ctx, target, http.StatusOK))
	})

	step(t, "kill + restart postgres", func() {
		if err := l.Kill(ctx, Postgres); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "/ready 503 without postgres", readyIs(ctx, target, http.StatusServiceUnavailable))
		if err := l.Restart(ctx, Postgres); err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, "/ready 200 after postgres restart", readyIs(ctx, target, http.StatusOK))
		if err := uniqueProcessedIs(ctx, target, 1)(); err != nil {
			t.Fatalf("after postgres crash: %v", err)
		}
	})

	step(t, "pause + resume service-0", func() {
		if err := l.Pause(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if code, _, err := call(ctx, http.MethodGet, target+"/health", nil, 300*time.Millisecond); err == nil {
			t.Fatalf("/health answered %d while paused", code)
		}
		if err := l.Resume(ctx, svc); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "/health after resume", func() error {
			code, _, err := call(ctx, http.MethodGet, target+"/health", nil, time.Second)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("/health %d", code)
			}
			return err
		})
	})

	step(t, "cut the link to postgres, heal", func() {
		if err := l.SetLink(ctx, Postgres, LinkCut, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "/ready 503 with postgres cut off", readyIs(ctx, target, http.StatusServiceUnavailable))
		if err := l.SetLink(ctx, Postgres, LinkOK, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "/ready 200 after heal", readyIs(ctx, target, http.StatusOK))
	})

	step(t, "blackhole the link to redis, heal", func() {
		if err := l.SetLink(ctx, Redis, LinkBlackhole, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "/ready 503 with redis blackholed", readyIs(ctx, target, http.StatusServiceUnavailable))
		if err := l.SetLink(ctx, Redis, LinkOK, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "/ready 200 after heal", readyIs(ctx, target, http.StatusOK))
	})

	step(t, "terminate + restart service-0", func() {
		if err := l.Terminate(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if err := l.Terminate(ctx, svc); err != nil {
			t.Errorf("Terminate of a stopped service: %v", err)
		}
		if err := l.Restart(ctx, svc); err != nil {
			t.Fatal(err)
		}
		publish(t, ctx, target, "e2")
		eventually(t, 15*time.Second, "event e2 processed", uniqueProcessedIs(ctx, target, 2))
	})

	step(t, "errors", func() {
		if err := l.Kill(ctx, "service-7"); err == nil || !strings.Contains(err.Error(), "unknown node") {
			t.Errorf("Kill of an unknown node: %v", err)
		}
		if err := l.SetLink(ctx, svc, LinkCut, 0); err == nil {
			t.Error("SetLink to a service succeeded")
		}
		if err := l.SetLink(ctx, Redis, LinkSlow, 0); err == nil {
			t.Error("slow link without latency accepted")
		}
		if _, _, err := l.Usage(Redis); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Usage(redis): %v", err)
		}
	})

	step(t, "close", func() {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := l.Kill(ctx, svc); err == nil {
			t.Error("Kill after Close succeeded")
		}
		for _, name := range []string{"service-0.log", "redis.log", "postgres.log"} {
			if st, err := os.Stat(filepath.Join(l.RunDir(), name)); err != nil || st.Size() == 0 {
				t.Errorf("log %s after Close: %v", name, err)
			}
		}
		if _, _, err := call(ctx, http.MethodGet, target+"/health", nil, time.Second); err == nil {
			t.Error("service still answers after Close")
		}
		for node, port := range ports {
			if proc.PortReserved(port) {
				t.Errorf("port %d of %s still reserved after Close", port, node)
			}
		}
	})
}

// portOf returns the port of a URL.
func portOf(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("port of %s: %v", rawURL, err)
	}
	return port
}

// TestLocalNoAOF: the planted bug loses Redis's data on a kill; SetLink
// needs the proxies.
func TestLocalNoAOF(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	l := startLocal(t, ctx, LocalOptions{Services: 1, NoAOF: true, Settings: map[string]string{"SHUTDOWN_TIMEOUT": "3s"}})
	if p := l.Info().RedisPersistence; p != "none" {
		t.Errorf("RedisPersistence = %q", p)
	}
	rc := redisClient(t, l.RedisURL())
	addMarker(t, ctx, rc)
	if n := markerLen(t, ctx, rc); n != 1 {
		t.Fatalf("marker stream has %d entries", n)
	}
	if err := l.Kill(ctx, Redis); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx, Redis); err != nil {
		t.Fatal(err)
	}
	if n := markerLen(t, ctx, rc); n != 0 {
		t.Fatalf("marker stream has %d entries after kill + restart without AOF, want 0 (lost)", n)
	}
	if err := l.SetLink(ctx, Redis, LinkCut, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SetLink without proxies: %v", err)
	}
}

func TestStartLocalBadOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, o := range []LocalOptions{
		{Services: 0},
		{Services: 1, Settings: map[string]string{"DATABASE_URL": "postgres://x"}},
		{Services: 1, Binary: "/nonexistent/chronicleweaver"},
	} {
		o.RunDir = t.TempDir()
		if l, err := StartLocal(ctx, o); err == nil {
			l.Close()
			t.Errorf("StartLocal(%+v) succeeded", o)
		}
	}
}

func TestExternal(t *testing.T) {
	t.Parallel()
	e := External("http://127.0.0.1:1", "postgres://db")
	if got := e.Targets(); len(got) != 1 || got[0] != "http://127.0.0.1:1" || e.DatabaseURL() != "postgres://db" {
		t.Errorf("Targets %v, DatabaseURL %q", got, e.DatabaseURL())
	}
	ctx := context.Background()
	for name, err := range map[string]error{
		"kill":      e.Kill(ctx, "service-0"),
		"terminate": e.Terminate(ctx, "service-0"),
		"restart":   e.Restart(ctx, "service-0"),
		"pause":     e.Pause(ctx, "service-0"),
		"resume":    e.Resume(ctx, "service-0"),
		"setlink":   e.SetLink(ctx, Redis, LinkCut, 0),
	} {
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := e.Usage("service-0"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Usage: %v", err)
	}
	if e.Info().Backend != "external" || e.Close() != nil {
		t.Errorf("Info %+v", e.Info())
	}
}
