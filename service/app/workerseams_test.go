//go:build !plantedbugs

package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// A build without the plantedbugs tag refuses to start with a planted bug,
// even from a Config that skipped Validate, with a line naming the setting.
func TestDefaultBuildRefusesPlantedBug(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := config.Defaults()
	cfg.DatabaseURL, cfg.RedisURL, cfg.StreamPrefix = env.NewDatabase(t), env.Redis.URL(), env.NewPrefix(t)
	cfg.PlantedBug = planted.NoLedger
	m := &app.Main{Config: cfg, Listen: "127.0.0.1:0"}
	err := m.Run(ctx)
	if cerr := m.Close(ctx); cerr != nil {
		t.Errorf("Close: %v", cerr)
	}
	if err == nil || !strings.Contains(err.Error(), planted.EnvVar) || !strings.Contains(err.Error(), "without planted bugs") {
		t.Fatalf("Run with %s=%s in a default build = %v", planted.EnvVar, planted.NoLedger, err)
	}
}
