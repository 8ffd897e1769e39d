// Command chronicleweaver-dev runs the service the way `make run` does: a
// throwaway PostgreSQL cluster and a Redis with AOF as local processes (data
// in a temporary folder, free ports), and the service on APP_PORT (8080) of
// 127.0.0.1, or of the address -listen names (CHRONICLE_BIND).
//
// Ctrl-C or SIGTERM stops everything, deletes the data, prints one
// "stopped" line and exits 0; a second Ctrl-C kills at once (the next start
// removes what that leaves behind).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chronicleweaver-dev:", err)
		os.Exit(1)
	}
}

func run() error {
	bind := os.Getenv("CHRONICLE_BIND")
	if bind == "" {
		bind = "127.0.0.1"
	}
	flag.StringVar(&bind, "listen", bind, "address to listen on (CHRONICLE_BIND): 127.0.0.1 is this machine only, 0.0.0.0 every interface")
	flag.Parse()
	if net.ParseIP(bind) == nil && bind != "localhost" {
		return fmt.Errorf("-listen %q: want an IP address such as 127.0.0.1 or 0.0.0.0", bind)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	start := time.Now()
	// Settings come from the environment as for the real service; the
	// database and Redis URLs are the throwaway ones.
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "chronicleweaver-dev: starting a throwaway PostgreSQL and Redis (a few seconds)")
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{Durable: true})
	if err != nil {
		return err
	}
	defer pg.Close()
	rd, err := devenv.StartRedis(ctx, devenv.RedisOptions{})
	if err != nil {
		return err
	}
	defer rd.Close()
	if cfg.DatabaseURL, err = pg.CreateDatabase(ctx, "chronicleweaver"); err != nil {
		return err
	}
	cfg.RedisURL = rd.URL()

	m := &app.Main{Config: cfg, Log: app.NewLogger(os.Stderr, cfg.LogLevel),
		Listen: net.JoinHostPort(bind, strconv.Itoa(cfg.Port))}
	if err := m.Run(ctx); err != nil {
		return err
	}
	host := bind
	if bind == "0.0.0.0" {
		host = "127.0.0.1" // reachable from here; other machines use this one's address
	}
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(cfg.Port))
	exposed := "this machine only; make run CHRONICLE_BIND=0.0.0.0 listens on every interface"
	if bind != "127.0.0.1" && bind != "localhost" {
		exposed = "listening on " + bind + ": reachable from other machines"
		if cfg.APIToken == "" {
			exposed += ", and /publish needs no token (set API_TOKEN)"
		}
	}
	fmt.Printf(`
ChronicleWeaver is running on %s (%s), ready in %s
  PostgreSQL: %s (data in %s)
  Redis:      %s (AOF in %s)

Publish an event:
  curl -s -X POST %s/publish -H 'Content-Type: application/json' \
    -d '{"events":[{"event_id":"e-1","topic":"demo","source":"curl","timestamp":"2026-01-01T12:00:00Z","payload":{"message":"hello","timestamp":"2026-01-01T12:00:00Z"}}]}'
Then: curl -s %s/stats   (API docs: %s/docs)
Ctrl-C stops everything and deletes the data.
`, base, exposed, time.Since(start).Round(100*time.Millisecond), cfg.DatabaseURL, pg.Dir(), cfg.RedisURL, rd.Dir(), base, base, base)

	<-ctx.Done()
	stop() // a second Ctrl-C kills at once
	fmt.Fprintln(os.Stderr, "\nchronicleweaver-dev: stopping (draining the queue; Ctrl-C again kills at once)")
	summary := statsLine(base)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Close(sctx); err != nil {
		return err
	}
	pgErr, rdErr := pg.Close(), rd.Close()
	if pgErr != nil {
		return fmt.Errorf("stop PostgreSQL: %w", pgErr)
	}
	if rdErr != nil {
		return fmt.Errorf("stop Redis: %w", rdErr)
	}
	fmt.Printf("chronicleweaver-dev: stopped after %s%s; PostgreSQL and Redis stopped, their data deleted\n",
		time.Since(start).Round(time.Second), summary)
	return nil
}

// statsLine is ": N events received, M stored" from /stats, or "" when
// it cannot be read.
func statsLine(base string) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/stats")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		Received        int64 `json:"received"`
		UniqueProcessed int64 `json:"unique_processed"`
		Duplicates      int64 `json:"duplicated_dropped"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return ""
	}
	return fmt.Sprintf(": %d events received, %d stored, %d duplicates dropped", st.Received, st.UniqueProcessed, st.Duplicates)
}
