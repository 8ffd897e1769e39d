package app_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
)

// MEMORY_LIMIT is handed to the runtime while the service runs, and the
// limit before it is restored when it closes. (Not parallel: the limit is
// the process's, and parallel tests wait until this one is done.)
func TestMemoryLimitSet(t *testing.T) {
	if v := memoryLimitViolation(t, ""); v != "" {
		t.Fatal(v)
	}
}

// memoryLimitViolation runs a service with MEMORY_LIMIT 300 MiB (and the
// planted bug, if any) and says how the runtime's limit differs.
func memoryLimitViolation(t *testing.T, bug string) string {
	const limit = 300 << 20
	before := debug.SetMemoryLimit(-1)
	tb := newTestbed(t, func(c *config.Config) { c.MemoryLimit, c.PlantedBug = limit, bug })
	got := debug.SetMemoryLimit(-1)
	tb.stop()
	after := debug.SetMemoryLimit(-1)
	t.Logf("memory limit: %d before the service, %d while it runs (MEMORY_LIMIT %d), %d after", before, got, limit, after)
	switch {
	case got != limit:
		return fmt.Sprintf("the runtime's memory limit is %d while the service runs, want MEMORY_LIMIT %d", got, limit)
	case after != before:
		return fmt.Sprintf("the memory limit is %d after Close, want %d restored", after, before)
	}
	return ""
}

// MEMORY_LIMIT: a default, GOMEMLIMIT kept when MEMORY_LIMIT is unset, and
// a bad value named.
func TestMemoryLimitSetting(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	c, err := config.FromEnv(env())
	mustf(t, err == nil && c.MemoryLimit == config.DefaultMemoryLimit && c.MaxConnections == 4096, "defaults: %v %+v", err, c)
	c, err = config.FromEnv(env("GOMEMLIMIT", "1GiB"))
	mustf(t, err == nil && c.MemoryLimit == 0, "GOMEMLIMIT alone: MEMORY_LIMIT %d (%v), want 0 (the runtime's)", c.MemoryLimit, err)
	c, err = config.FromEnv(env("GOMEMLIMIT", "1GiB", "MEMORY_LIMIT", "104857600"))
	mustf(t, err == nil && c.MemoryLimit == 100<<20, "both: MEMORY_LIMIT %d (%v), want 100 MiB", c.MemoryLimit, err)
	for _, bad := range []string{"1000", "-1", "lots"} {
		_, err = config.FromEnv(env("MEMORY_LIMIT", bad))
		mustf(t, err != nil && strings.Contains(err.Error(), "MEMORY_LIMIT"), "MEMORY_LIMIT=%s: %v, want an error naming it", bad, err)
	}
	_, err = config.FromEnv(env("MAX_CONNECTIONS", "-5"))
	mustf(t, err != nil && strings.Contains(err.Error(), "MAX_CONNECTIONS"), "MAX_CONNECTIONS=-5: %v", err)
}

// At most MAX_CONNECTIONS connections are served at once: of four held
// connections each sending a request, at most two are answered while all
// are open; once they close, the service answers again.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	if v := maxConnectionsViolation(t, ""); v != "" {
		t.Fatal(v)
	}
}

// maxConnectionsViolation runs a service with MAX_CONNECTIONS 2 (and the
// planted bug, if any) and says how it served more connections at once.
func maxConnectionsViolation(t *testing.T, bug string) string {
	const limit, held = 2, 4
	tb := newTestbed(t, func(c *config.Config) { c.MaxConnections, c.PlantedBug = limit, bug })
	host := strings.TrimPrefix(tb.url, "http://")
	answered := make(chan bool, held)
	var conns []net.Conn
	for range held {
		conn, err := net.DialTimeout("tcp", host, 5*time.Second)
		mustf(t, err == nil, "dial: %v", err)
		conns = append(conns, conn)
		go func() {
			_, _ = fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", host)
			// An answer within the deadline: the connection was served.
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				_ = resp.Body.Close()
			}
			answered <- err == nil
		}()
	}
	n := 0
	for range held {
		if <-answered {
			n++
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
	t.Logf("MAX_CONNECTIONS %d: %d of %d held connections answered", limit, n, held)
	if n > limit {
		return fmt.Sprintf("%d of %d held connections answered at once, MAX_CONNECTIONS %d", n, held, limit)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	waitFor(t, 20*time.Second, "an answer once the held connections closed", func() bool {
		resp, err := fresh.Get(tb.url + "/health")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return ""
}

// Every answer, of every route and status, carries
// X-Content-Type-Options: nosniff.
func TestNosniffOnEveryAnswer(t *testing.T) {
	t.Parallel()
	if v := nosniffViolation(t, ""); v != "" {
		t.Fatal(v)
	}
}

// nosniffViolation runs a service (with the planted bug, if any) and names
// the first answer without nosniff.
func nosniffViolation(t *testing.T, bug string) string {
	tb := newTestbed(t, func(c *config.Config) { c.PlantedBug = bug })
	for _, path := range []string{"/", "/health", "/events", "/stats", "/docs", "/openapi.json", "/metrics", "/nope", "/events?topic=%00"} {
		resp, err := http.Get(tb.url + path)
		mustf(t, err == nil, "GET %s: %v", path, err)
		_ = resp.Body.Close()
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			return fmt.Sprintf("GET %s: %d with X-Content-Type-Options %q, want nosniff", path, resp.StatusCode, got)
		}
	}
	return ""
}
