// Command chronicleweaver-dev runs the service the way `make run` does: a
// throwaway PostgreSQL cluster and a Redis with AOF as local processes (data
// in a temporary folder, free ports), and the service on APP_PORT (8080).
// Everything is removed on Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// Settings come from the environment as for the real service; the
	// database and Redis URLs are the throwaway ones.
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
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

	m := &app.Main{Config: cfg, Log: app.NewLogger(os.Stderr, cfg.LogLevel)}
	if err := m.Run(ctx); err != nil {
		return err
	}
	fmt.Printf(`
ChronicleWeaver is running on http://127.0.0.1:%d
  PostgreSQL: %s (data in %s)
  Redis:      %s (AOF in %s)

Publish an event:
  curl -s -X POST http://127.0.0.1:%d/publish -H 'Content-Type: application/json' \
    -d '{"events":[{"event_id":"e-1","topic":"demo","source":"curl","timestamp":"2026-01-01T12:00:00Z","payload":{"message":"hello","timestamp":"2026-01-01T12:00:00Z"}}]}'
Then: curl -s http://127.0.0.1:%d/stats   (API docs: http://127.0.0.1:%d/docs)
Ctrl-C stops everything and deletes the data.
`, cfg.Port, cfg.DatabaseURL, pg.Dir(), cfg.RedisURL, rd.Dir(), cfg.Port, cfg.Port, cfg.Port)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.Close(sctx)
}
