package devenv_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

// TestRedisNoAOF checks the planted "Redis without AOF" bug: a server
// started with NoAOF comes back from SIGKILL with an empty stream, while the
// default server (AOF on) keeps it.
func TestRedisNoAOF(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		noAOF          bool
		wantAppendonly string
		wantAfterKill  int64
	}{
		{name: "aof", noAOF: false, wantAppendonly: "yes", wantAfterKill: 3},
		{name: "no_aof", noAOF: true, wantAppendonly: "no", wantAfterKill: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			r, err := devenv.StartRedis(ctx, devenv.RedisOptions{NoAOF: tc.noAOF, AppendFsync: "always"})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c := newRedisClient(t, r.Addr())
			cfg, err := c.ConfigGet(ctx, "*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if cfg["appendonly"] != tc.wantAppendonly || cfg["save"] != "" {
				t.Fatalf("appendonly = %q, save = %q; want %q and no snapshots", cfg["appendonly"], cfg["save"], tc.wantAppendonly)
			}
			for i := range 3 {
				if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"i", i}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if n, err := c.XLen(ctx, "s").Result(); err != nil || n != tc.wantAfterKill {
				t.Fatalf("XLEN after SIGKILL and restart = %d, %v; want %d", n, err, tc.wantAfterKill)
			}
		})
	}
}
