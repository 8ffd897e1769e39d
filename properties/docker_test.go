package properties

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
)

// racingDockerChecks is smaller than racingChecks: the property is the
// same, only the environment differs (containers through testcontainers-go).
var racingDockerChecks = budget{bounded: 10, full: 50}

// TestRacingDuplicatesDocker runs the racing-duplicates property once on
// the docker backend: PostgreSQL, Redis and the service in containers on a
// private network. It is skipped only when no Docker daemon answers.
func TestRacingDuplicatesDocker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	ok := env.DockerAvailable(ctx)
	cancel()
	if !ok {
		t.Skip("no Docker daemon answers: the docker backend cannot run here")
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer scancel()
	e, err := env.StartDocker(sctx, env.DockerOptions{
		Services: 1, Settings: apiSettings, RunDir: filepath.Join(runRoot, "docker"), Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("start the docker environment: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close the docker environment: %v", err)
		}
	})
	st := newRunStats(t)
	defer recordClean(t, propRacing+" (docker)", st)
	check(t, racingDockerChecks, st, racingDuplicates(e, true))
}
