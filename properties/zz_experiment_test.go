package properties

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

func TestZZRedisKillExperiment(t *testing.T) {
	fsync := os.Getenv("EXP_FSYNC")
	e, err := startEnv("exp-"+fsync, env.LocalOptions{Settings: machineSettings, AppendFsync: fsync})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ropts, _ := redis.ParseURL(e.RedisURL())
	rapid.Check(t, func(rt *rapid.T) {
		m := &machine{e: e, p: newPublisher(e), sp: newSpace("x"), model: model{acked: map[history.Key]bool{}, maybe: map[history.Key]bool{}}}
		m.rdb = redis.NewClient(ropts)
		m.log = func(format string, args ...any) { logf(rt, format, args...) }
		var err error
		m.before, err = settled(m.p.cl)
		must(rt, err, "before")
		for i := 0; i < 4; i++ {
			if os.Getenv("EXP_PG") != "" {
				m.restartPostgres(rt)
			}
			m.killRedis(rt)
		}
		m.verify(rt)
	})
}
