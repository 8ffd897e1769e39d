package properties

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// TestStateMachine: a drawn sequence of publishes (single events, batches,
// resent requests), crashes (SIGKILL of the service, possibly during a burst
// of publishes; kill and restart of Redis, possibly during a burst; an
// immediate stop and restart of PostgreSQL with a publish while it is down)
// and drain-and-checks. At every drain-and-check, and once more at the end
// after healing, checker.Check over the history so far must be valid and
// the model's expectations must hold: every acknowledged key stored,
// received within [acknowledged copies, acknowledged + unknown copies],
// unique_processed equal to the number of distinct stored keys.
//
// Each action logs one compact line ("publish [t0/e3 t1/e5] -> ok", "kill
// service-0", "drain+check"), so that the shrunk counterexample rapid
// prints is a readable list of steps.
func TestStateMachine(t *testing.T) {
	t.Parallel()
	e := useSharedEnv(t, "machine", env.LocalOptions{Settings: machineSettings, AppendFsync: machineFsync})
	st := newRunStats(t)
	defer recordClean(t, propMachine, st)
	check(t, machineChecks, st, stateMachine(e))
}

const propMachine = "state machine"

// stepPrefix starts every action's log line; counting these lines gives the
// length of a counterexample.
const stepPrefix = "step "

// machine is the state of one check: the environment, what was sent, and
// the model of what must be stored.
type machine struct {
	e   *env.Local
	p   *publisher
	rdb *redis.Client
	sp  space

	before snapshot
	step   int
	nextID int    // next new event number
	sent   [][]ev // every request drawn, for publish-duplicate
	down   bool   // service-0 is stopped
	// pgDown and redisDown are set while an action has them stopped, so
	// that a check failing midway still heals them.
	pgDown, redisDown bool
	// pgRestarted: PostgreSQL restarted since the last verify; a worker may
	// still be backing off to retry a batch another worker has applied.
	pgRestarted   bool
	pgRestartedAt time.Time
	model         model
	seq           int
	log           func(format string, args ...any)
	stream        string
}

// model is what the history implies: keys that must be stored (acked),
// keys that may be (unknown outcome), and copy counts.
type model struct {
	acked, maybe                map[history.Key]bool
	ackedCopies, unknownCopies  int64
	requestsOK, requestsUnknown int
}

func (m *model) record(evs []ev, typ history.Type) {
	switch typ {
	case history.OK:
		m.requestsOK++
		m.ackedCopies += int64(len(evs))
		for _, e := range evs {
			m.acked[e.key()] = true
		}
	case history.Info:
		m.requestsUnknown++
		m.unknownCopies += int64(len(evs))
		for _, e := range evs {
			m.maybe[e.key()] = true
		}
	}
}

func stateMachine(e *env.Local) func(*rapid.T) {
	ropts, err := redis.ParseURL(e.RedisURL())
	if err != nil {
		panic(err)
	}
	stream := queue.New(nil, queue.Options{Prefix: config.Defaults().StreamPrefix}).Stream()
	// lastPG is when an earlier check last restarted PostgreSQL: a worker
	// of that check may still be backing off before retrying (checks run
	// one after the other).
	var lastPG time.Time
	return func(t *rapid.T) {
		m := &machine{
			e: e, p: newPublisher(e), sp: newSpace("sm"), stream: stream,
			model: model{acked: map[history.Key]bool{}, maybe: map[history.Key]bool{}},
		}
		defer func() {
			if m.pgRestartedAt.After(lastPG) {
				lastPG = m.pgRestartedAt
			}
		}()
		m.rdb = redis.NewClient(ropts)
		defer m.rdb.Close()
		m.log = func(format string, args ...any) {
			m.step++
			logf(t, stepPrefix+"%d: "+format, append([]any{m.step}, args...)...)
		}
		// Start clean: every node up, the queue drained, the counters
		// still.
		must(t, m.heal(), "heal before the check")
		if time.Since(lastPG) < 10*time.Second {
			must(t, quiesce(m.p.cl, quietTime), "wait for the counters to settle")
		}
		m.before, err = settled(m.p.cl)
		if err != nil {
			// Only a broken service leaves a queue that does not drain
			// (a planted bug, in an earlier check): start from an empty
			// Redis so that rapid can still reproduce and shrink.
			logf(t, "the queue does not drain (%v): flushing Redis and restarting service-0", err)
			must(t, m.repair(), "repair")
			m.before, err = settled(m.p.cl)
			must(t, err, "stats before")
		}
		t.Cleanup(func() {
			if err := m.heal(); err != nil {
				logf(t, "heal after the check: %v", err)
			}
		})

		t.Repeat(map[string]func(*rapid.T){
			"publish":           m.publish,
			"publish-batch":     m.publishBatch,
			"publish-duplicate": m.publishDuplicate,
			"kill-service":      m.killService,
			"restart-service":   m.restartService,
			"kill-redis":        m.killRedis,
			"restart-postgres":  m.restartPostgres,
			"drain-check":       m.drainCheck,
			"":                  m.invariant,
		})
		// Every sequence ends healed and checked.
		if m.down {
			m.log("restart service-0 (end)")
			must(t, m.restart(), "restart service-0")
		}
		m.log("drain+check (end)")
		m.verify(t)
	}
}

// --- actions ---

// drawEvents draws n events: mostly new keys over three topics, some
// repeating an earlier event id (in the same or another topic).
func (m *machine) drawEvents(t *rapid.T, n int) []ev {
	evs := make([]ev, n)
	for i := range evs {
		id := m.nextID
		if m.nextID > 0 && rapid.IntRange(0, 3).Draw(t, "repeat id?") == 0 {
			id = rapid.IntRange(0, m.nextID-1).Draw(t, "id")
		} else {
			m.nextID++
		}
		m.seq++
		evs[i] = newEvent(m.sp.key(rapid.IntRange(0, 2).Draw(t, "topic"), id), m.seq, baseTime.Add(time.Duration(m.seq)*time.Millisecond), "sm")
	}
	m.sent = append(m.sent, evs)
	return evs
}

func (m *machine) send(evs []ev) string {
	status, typ, _ := m.p.publish(0, evs)
	m.model.record(evs, typ)
	return outcome(status, typ)
}

func (m *machine) publish(t *rapid.T) {
	evs := m.drawEvents(t, rapid.IntRange(1, 4).Draw(t, "events"))
	res := m.send(evs)
	m.log("publish %s -> %s", m.sp.shortKeys(keysOf(evs), 4), res)
}

func (m *machine) publishBatch(t *rapid.T) {
	evs := m.drawEvents(t, rapid.IntRange(10, 40).Draw(t, "events"))
	res := m.send(evs)
	m.log("publish-batch %d %s -> %s", len(evs), m.sp.shortKeys(keysOf(evs), 3), res)
}

func (m *machine) publishDuplicate(t *rapid.T) {
	if len(m.sent) == 0 {
		t.Skip("nothing sent yet")
	}
	i := rapid.IntRange(0, len(m.sent)-1).Draw(t, "request")
	evs := m.sent[i]
	res := m.send(evs)
	m.log("publish-duplicate of request %d %s -> %s", i+1, m.sp.shortKeys(keysOf(evs), 4), res)
}

// drawBurst draws up to 16 requests of 2..8 events for a burst (none: the
// fault comes alone).
func (m *machine) drawBurst(t *rapid.T) [][]ev {
	n := rapid.IntRange(0, 16).Draw(t, "burst requests")
	reqs := make([][]ev, n)
	for i := range reqs {
		reqs[i] = m.drawEvents(t, rapid.IntRange(2, 8).Draw(t, "burst events"))
	}
	return reqs
}

// burst publishes reqs concurrently, calls fault once half of them have
// been acknowledged (or all have answered), waits for the rest and records
// the outcomes. It returns how they ended.
func (m *machine) burst(reqs [][]ev, fault func() error) (string, error) {
	if len(reqs) == 0 {
		return "", fault()
	}
	type done struct {
		i   int
		typ history.Type
	}
	answers := make(chan done, len(reqs))
	var wg sync.WaitGroup
	for i, evs := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, typ, _ := m.p.publish(1+i, evs)
			answers <- done{i, typ}
		}()
	}
	types := make([]history.Type, len(reqs))
	got, acked := 0, 0
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
wait:
	for got < len(reqs) && 2*acked < len(reqs) {
		select {
		case a := <-answers:
			types[a.i] = a.typ
			got++
			if a.typ == history.OK {
				acked++
			}
		case <-deadline.C:
			break wait
		}
	}
	err := fault()
	wg.Wait()
	close(answers)
	for a := range answers {
		types[a.i] = a.typ
	}
	counts := map[history.Type]int{}
	for i, evs := range reqs {
		m.model.record(evs, types[i])
		counts[types[i]]++
	}
	return fmt.Sprintf(" (burst of %d requests: %d ok, %d unknown, %d failed)",
		len(reqs), counts[history.OK], counts[history.Info], counts[history.Fail]), err
}

func (m *machine) killService(t *rapid.T) {
	if m.down {
		t.Skip("service-0 is down")
	}
	reqs := m.drawBurst(t)
	how, err := m.burst(reqs, func() error { return m.e.Kill(context.Background(), env.ServiceNode(0)) })
	m.down = true
	m.log("kill service-0%s", how)
	must(t, err, "kill service-0")
}

func (m *machine) restartService(t *rapid.T) {
	if !m.down {
		t.Skip("service-0 is up")
	}
	m.log("restart service-0")
	must(t, m.restart(), "restart service-0")
}

func (m *machine) restart() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	if err := m.e.Restart(ctx, env.ServiceNode(0)); err != nil {
		return err
	}
	m.down = false
	return nil
}

// killRedis kills Redis (SIGKILL), during a burst of publishes when the
// service is up, and restarts it at once.
func (m *machine) killRedis(t *rapid.T) {
	var reqs [][]ev
	if !m.down {
		reqs = m.drawBurst(t)
	}
	m.redisDown = true
	how, err := m.burst(reqs, func() error { return m.e.Kill(context.Background(), env.Redis) })
	m.log("kill+restart redis%s", how)
	must(t, err, "kill redis")
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	must(t, m.e.Restart(ctx, env.Redis), "restart redis")
	m.redisDown = false
}

// restartPostgres stops PostgreSQL at once; while it is down, a drawn
// request is published (the service takes it into Redis) and the harness
// waits until a worker stuck on it has had it claimed by another (CLAIM_IDLE
// is short), so both apply it when PostgreSQL is back: a redelivery the
// ledger must recognise. Then PostgreSQL restarts.
func (m *machine) restartPostgres(t *rapid.T) {
	var evs []ev
	if !m.down {
		evs = m.drawEvents(t, rapid.IntRange(1, 4).Draw(t, "events"))
	}
	m.pgDown = true
	must(t, m.e.Kill(context.Background(), env.Postgres), "stop postgres")
	how := ""
	if evs != nil {
		res := m.send(evs)
		claimed := m.waitClaimed(3 * time.Second)
		how = fmt.Sprintf(" (publish %s while down -> %s; claimed by a second worker: %v)", m.sp.shortKeys(keysOf(evs), 4), res, claimed)
	}
	m.log("restart postgres%s", how)
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	must(t, m.e.Restart(ctx, env.Postgres), "restart postgres")
	m.pgDown = false
	if evs != nil { // workers were stuck on a batch: some may still back off
		m.pgRestarted, m.pgRestartedAt = true, time.Now()
	}
}

// waitClaimed polls the consumer group until some pending entry has been
// delivered more than once, or d passes.
func (m *machine) waitClaimed(d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pend, err := m.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: m.stream, Group: queue.Group, Start: "-", End: "+", Count: 100}).Result()
		if err == nil {
			for _, p := range pend {
				if p.RetryCount > 1 {
					return true
				}
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

func (m *machine) drainCheck(t *rapid.T) {
	if m.down {
		t.Skip("service-0 is down")
	}
	m.log("drain+check")
	m.verify(t)
}

// verify drains, reads back and checks the history so far and the model.
func (m *machine) verify(t *rapid.T) {
	t.Helper()
	if m.pgRestarted {
		// Workers stuck while PostgreSQL was down retry with a backoff of
		// up to 2 s: wait until the counters stop moving, so that their
		// late work is judged with the steps that caused it.
		must(t, quiesce(m.p.cl, quietTime), "wait for the counters to settle")
		m.pgRestarted = false
	}
	rb, err := readBack(m.e, m.p.cl, m.sp, m.before)
	must(t, err, "read back")
	res := checker.Check(m.p.rec.Ops(), rb)
	logf(t, "  check: %s", describe(res, m.sp))
	if !res.Valid {
		violated(t, "checker.Check invalid", "%s", strings.Join(res.Violations, "; "))
	}
	var missing []history.Key
	for k := range m.model.acked {
		if rb.Stored[k] == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		violated(t, "model: acknowledged keys not stored", "%s", m.sp.shortKeys(missing, 10))
	}
	d := rb.After.Sub(rb.Before)
	if d.Received < m.model.ackedCopies || d.Received > m.model.ackedCopies+m.model.unknownCopies {
		violated(t, "model: received out of range", "received grew by %d, want %d..%d",
			d.Received, m.model.ackedCopies, m.model.ackedCopies+m.model.unknownCopies)
	}
	distinct := 0
	for k, n := range rb.Stored {
		if n > 0 {
			distinct++
			if !m.model.acked[k] && !m.model.maybe[k] {
				violated(t, "model: stored key never acknowledged nor unknown", "%s", m.sp.short(k))
			}
		}
	}
	if d.UniqueProcessed != int64(distinct) {
		violated(t, "model: unique_processed differs from the stored keys", "unique_processed grew by %d, %d keys stored", d.UniqueProcessed, distinct)
	}
}

// invariant runs after every action: the service answers /health exactly
// when the model says it is up.
func (m *machine) invariant(t *rapid.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.p.cl.Base+"/health", nil)
	resp, err := m.p.cl.HTTP.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	switch {
	case m.down && !(err != nil && errors.Is(err, syscall.ECONNREFUSED)):
		violated(t, "model: service-0 should be down", "GET /health: %v", statusOrErr(resp, err))
	case !m.down && (err != nil || resp.StatusCode != http.StatusOK):
		violated(t, "model: service-0 should be up", "GET /health: %v", statusOrErr(resp, err))
	}
}

func statusOrErr(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// quietTime is how long the counters must stand still after a PostgreSQL
// restart: more than the workers' longest retry backoff (2 s).
const quietTime = 2500 * time.Millisecond

// quiesce waits until /stats has not changed for quiet (polling every
// DrainPoll), at most a minute.
func quiesce(cl *client.Client, quiet time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last checker.Stats
	since := time.Now()
	tick := time.NewTicker(client.DrainPoll)
	defer tick.Stop()
	for {
		s, err := cl.Stats(ctx)
		if err != nil || s != last {
			last, since = s, time.Now()
		} else if time.Since(since) >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("counters still moving after a minute: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// repair empties Redis (stream, group, backlog counter) and restarts
// service-0, which creates the group again.
func (m *machine) repair() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	if err := m.rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	if err := m.e.Restart(ctx, env.ServiceNode(0)); err != nil {
		return err
	}
	m.down = false
	return nil
}

// heal starts whatever is down: service-0 between its kill and restart
// actions, Redis or PostgreSQL when a check failed inside their action.
func (m *machine) heal() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	for _, n := range []struct {
		node string
		down *bool
	}{{env.Redis, &m.redisDown}, {env.Postgres, &m.pgDown}} {
		if *n.down {
			if err := m.e.Restart(ctx, n.node); err != nil {
				return err
			}
			*n.down = false
		}
	}
	cl := client.New(m.e.Targets()[0], "")
	if err := cl.Ready(ctx); err != nil || m.down {
		if err := m.e.Restart(ctx, env.ServiceNode(0)); err != nil {
			return err
		}
		m.down = false
	}
	_, err := cl.WaitReady(ctx)
	return err
}
