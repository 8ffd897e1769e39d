package env

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	dockerapi "github.com/moby/moby/client"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// startDocker starts a Docker env for t (skipped when no daemon answers),
// building the offline PostgreSQL and Redis images first if no image is
// present, and closes it in t.Cleanup.
func startDocker(t *testing.T, o DockerOptions) *Docker {
	t.Helper()
	ctx := context.Background()
	if !DockerAvailable(ctx) {
		t.Skip("no Docker daemon answers (docker version): the Docker backend tests need one")
	}
	pg, rd, err := EnsureImages(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	o.PostgresImage, o.RedisImage = pg, rd
	if o.RunDir == "" {
		o.RunDir = t.TempDir()
	}
	o.Logf = t.Logf
	start := time.Now()
	d, err := StartDocker(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("StartDocker: %d service(s) ready in %v (%s, %s)", o.Services, time.Since(start).Round(time.Millisecond), pg, rd)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("container logs kept in %s", d.RunDir())
		}
		assertNothingLeft(t, d.ID())
	})
	return d
}

// assertNothingLeft checks that no container or network of the env is left.
func assertNothingLeft(t *testing.T, id string) {
	t.Helper()
	cli, err := dockerClient()
	if err != nil {
		t.Error(err)
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := make(dockerapi.Filters).Add("label", LabelEnv+"="+id)
	cs, err := cli.ContainerList(ctx, dockerapi.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Error(err)
	} else if len(cs.Items) > 0 {
		t.Errorf("%d container(s) of env %s left after Close", len(cs.Items), id)
	}
	ns, err := cli.NetworkList(ctx, dockerapi.NetworkListOptions{Filters: f})
	if err != nil {
		t.Error(err)
	} else if len(ns.Items) > 0 {
		t.Errorf("%d network(s) of env %s left after Close", len(ns.Items), id)
	}
}

// publisher sends a gen source's requests one by one and records them.
type publisher struct {
	t   *testing.T
	c   *client.Client
	rec *history.Recorder
}

// publish sends r until it is acknowledged (resending is safe: contract
// guarantee 4), recording every attempt, and fails the test after limit.
func (p *publisher) publish(ctx context.Context, r gen.Request, limit time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		inv := p.rec.Invoke(0, history.FPublish, r.Keys, "")
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		status, typ, err := p.c.Publish(rctx, r.Body)
		cancel()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		p.rec.Complete(inv, typ, time.Now(), status, msg, "")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("request %d not acknowledged within %v: %v", r.Seq, limit, err)
		}
		select { // the retry pace
		case <-ctx.Done():
			p.t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *publisher) publishAll(ctx context.Context, rs []gen.Request, limit time.Duration) {
	p.t.Helper()
	for _, r := range rs {
		p.publish(ctx, r, limit)
	}
}

// TestDockerKillRestart runs the system in containers and injects every
// fault the backend has between batches of publishes: a killed and
// restarted service and Redis, a cut and healed Redis link, a paused
// service, a terminated service, a crashed PostgreSQL. Every acknowledged
// event must be stored once and the stats must be exact.
func TestDockerKillRestart(t *testing.T) {
	d := startDocker(t, DockerOptions{Services: 1, Settings: map[string]string{"CLAIM_IDLE": "2s"}})
	ctx := context.Background()
	target := d.Targets()[0]
	httpc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	c := &client.Client{Base: target, HTTP: httpc}
	rec, err := history.NewRecorder("")
	if err != nil {
		t.Fatal(err)
	}
	p := &publisher{t: t, c: c, rec: rec}
	before, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}

	cfg := gen.Config{Seed: 6, RunID: "docker-" + d.ID(), Events: 700, DuplicateRatio: 0.3, Topics: 3, EventsPerRequest: 10}
	src, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reqs := src.All()
	batches := make([][]gen.Request, 7)
	for i, r := range reqs {
		batches[i*len(batches)/len(reqs)] = append(batches[i*len(batches)/len(reqs)], r)
	}
	step := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	svc := ServiceNode(0)

	p.publishAll(ctx, batches[0], 30*time.Second)
	step("kill service-0", func() error { return d.Kill(ctx, svc) })
	step("restart service-0", func() error { return d.Restart(ctx, svc) })
	if got := d.Targets()[0]; got != target {
		t.Fatalf("target changed across a restart: %s, then %s", target, got)
	}

	p.publishAll(ctx, batches[1], 30*time.Second)
	step("kill redis", func() error { return d.Kill(ctx, Redis) })
	step("restart redis", func() error { return d.Restart(ctx, Redis) })

	p.publishAll(ctx, batches[2], 60*time.Second)
	step("cut the link to redis", func() error { return d.SetLink(ctx, Redis, LinkCut, 0) })
	// A publish now cannot be acknowledged; whatever its answer, record it
	// as the client classifies it (the checker allows what may have landed).
	inv := rec.Invoke(0, history.FPublish, batches[3][0].Keys, "")
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	status, typ, err := c.Publish(rctx, batches[3][0].Body)
	cancel()
	if err == nil {
		t.Fatalf("publish acknowledged (%d) while Redis was cut off", status)
	}
	rec.Complete(inv, typ, time.Now(), status, err.Error(), "")
	t.Logf("publish while redis is cut off: %s (%v)", typ, err)
	step("heal the link to redis", func() error { return d.SetLink(ctx, Redis, LinkOK, 0) })
	if err := d.SetLink(ctx, Redis, LinkSlow, time.Millisecond); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SetLink slow: %v, want ErrUnsupported", err)
	}
	if err := d.SetLink(ctx, Redis, LinkReplyLost, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SetLink reply-lost: %v, want ErrUnsupported", err)
	}

	p.publishAll(ctx, batches[3], 60*time.Second)
	step("pause service-0", func() error { return d.Pause(ctx, svc) })
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	if err := c.Ready(pctx); err == nil {
		t.Errorf("paused service answered /ready")
	}
	cancel()
	step("resume service-0", func() error { return d.Resume(ctx, svc) })

	p.publishAll(ctx, batches[4], 30*time.Second)
	step("terminate service-0", func() error { return d.Terminate(ctx, svc) })
	step("restart service-0", func() error { return d.Restart(ctx, svc) })

	p.publishAll(ctx, batches[5], 30*time.Second)
	step("kill postgres", func() error { return d.Kill(ctx, Postgres) })
	step("restart postgres", func() error { return d.Restart(ctx, Postgres) })
	// Restarted while cut off, PostgreSQL is probed from inside its container.
	step("cut the link to postgres", func() error { return d.SetLink(ctx, Postgres, LinkCut, 0) })
	step("restart postgres while cut off", func() error { return d.Restart(ctx, Postgres) })
	step("heal the link to postgres", func() error { return d.SetLink(ctx, Postgres, LinkOK, 0) })
	step("blackhole postgres", func() error { return d.SetLink(ctx, Postgres, LinkBlackhole, 0) })
	p.publishAll(ctx, batches[6][:1], 30*time.Second) // queued in Redis: PostgreSQL is not on the publish path
	step("heal the link to postgres", func() error { return d.SetLink(ctx, Postgres, LinkOK, 0) })

	p.publishAll(ctx, batches[6][1:], 60*time.Second)

	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	after, took, err := c.WaitDrained(dctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drained in %v: %+v", took.Round(time.Millisecond), after)
	stored, err := client.StoredKeysDB(ctx, d.DatabaseURL(), cfg.EventIDPrefix())
	if err != nil {
		t.Fatal(err)
	}
	res := checker.Check(rec.Ops(), checker.Readback{Stored: stored, Before: before, After: after, Drained: true})
	if !res.Valid {
		t.Fatalf("checker: %+v", res)
	}
	if want := cfg.Events - cfg.Duplicates(); res.Stored != want {
		t.Errorf("stored %d distinct keys, want %d", res.Stored, want)
	}
	t.Logf("checker: valid; %d requests ok, %d unknown; %d keys stored; stats %+v", res.Requests.OK, res.Requests.Info, res.Stored, res.Stats)

	cpu, mem, err := d.Usage(svc)
	if err != nil || cpu <= 0 || mem <= 0 {
		t.Errorf("Usage(%s) = %v s, %d bytes, %v; want positive", svc, cpu, mem, err)
	}
	if _, _, err := d.Usage(Redis); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Usage(redis): %v, want ErrUnsupported", err)
	}
	if log, err := d.ServiceLog(ctx, svc); err != nil || !bytes.Contains(log, []byte(`"msg":"serving"`)) {
		t.Errorf("ServiceLog(%s): %d bytes, %v; want the service's JSON log", svc, len(log), err)
	}
	info := d.Info()
	if info.Backend != "docker" || info.PostgresVersion == "" || info.RedisVersion == "" || info.RedisPersistence != "aof always" {
		t.Errorf("Info() = %+v", info)
	}
	t.Logf("usage of %s: %.2f s CPU, %d MiB peak; %+v", svc, cpu, mem>>20, info)

	// The logs reach RunDir at Close.
	runDir := d.RunDir()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, n := range d.Nodes() {
		if st, err := os.Stat(filepath.Join(runDir, n+".log")); err != nil || st.Size() == 0 {
			t.Errorf("log of %s: %v", n, err)
		}
	}
	if err := d.Kill(ctx, svc); !errors.Is(err, errClosed) {
		t.Errorf("Kill after Close: %v, want errClosed", err)
	}
}

// TestDockerOptionsRejected checks what StartDocker refuses before it
// touches Docker.
func TestDockerOptionsRejected(t *testing.T) {
	t.Parallel()
	for _, o := range []DockerOptions{
		{Services: 0},
		{Services: 1, Settings: map[string]string{"DATABASE_URL": "postgres://x"}},
		{Services: 1, AppendFsync: "sometimes"},
	} {
		if d, err := StartDocker(context.Background(), o); err == nil {
			d.Close()
			t.Errorf("StartDocker(%+v) succeeded", o)
		}
	}
}

func TestDockerDefaultImages(t *testing.T) {
	ctx := context.Background()
	if !DockerAvailable(ctx) {
		t.Skip("no Docker daemon answers (docker version): the Docker backend tests need one")
	}
	t.Setenv(EnvPostgresImage, "example/pg:1")
	t.Setenv(EnvRedisImage, "")
	pg, rd := DefaultImages(ctx)
	if pg != "example/pg:1" {
		t.Errorf("postgres image %q, want the variable's", pg)
	}
	want := DefaultRedisImage
	if !ImageExists(ctx, DefaultRedisImage) && ImageExists(ctx, OfflineRedisImage) {
		want = OfflineRedisImage
	}
	if rd != want {
		t.Errorf("redis image %q, want %q", rd, want)
	}
}
