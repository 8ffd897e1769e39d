// Command chronicleweaver runs the aggregator: configuration from the
// environment (see service/config), everything else in service/app.
//
//	chronicleweaver              run the service
//	chronicleweaver healthcheck  exit 0 when the local instance answers /health
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
)

func main() {
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "healthcheck":
			os.Exit(app.Healthcheck(cfg.Port))
		default:
			fmt.Fprintf(os.Stderr, "chronicleweaver: unknown command %q (the only one is healthcheck)\n", os.Args[1])
			os.Exit(2)
		}
	}
	log := app.NewLogger(os.Stderr, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	m := &app.Main{Config: cfg, Log: log}
	if err := m.Run(ctx); err != nil {
		log.Error("start failed", "err", err)
		os.Exit(1)
	}
	<-ctx.Done()
	log.Info("shutting down", "timeout", cfg.ShutdownTime.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTime)
	defer cancel()
	if err := m.Close(sctx); err != nil {
		log.Warn(app.LogDrainCut, "err", err)
	}
	log.Info("stopped")
}
