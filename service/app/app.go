// Package app wires the service together: one Main type shared by the
// binary and the end-to-end tests, with Run and Close.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/chronicleweaver/chronicleweaver/service/api"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/metrics"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
	"github.com/chronicleweaver/chronicleweaver/service/worker"
)

// Main is one service instance.
type Main struct {
	Config config.Config
	Log    *slog.Logger
	// Listen is the address to listen on; empty means APP_HOST:APP_PORT.
	// Tests use "127.0.0.1:0".
	Listen string

	metrics  *metrics.Metrics
	store    *store.Store
	queue    *queue.Queue
	pool     *worker.Pool
	pruner   *worker.Pruner // nil when LEDGER_RETENTION is 0
	api      *api.Server
	http     *http.Server
	ln       net.Listener
	served   chan error
	debug    *http.Server // pprof, when DEBUG_ADDR is set
	stopPoll context.CancelFunc
	polled   chan struct{}
	// prevMemLimit is the runtime's memory limit before Run set
	// MEMORY_LIMIT (restored by Close); memLimitSet says Run set one.
	prevMemLimit int64
	memLimitSet  bool
}

// NewLogger returns a JSON slog logger at level ("debug", "info", "warn", "error").
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Run connects to PostgreSQL and Redis (retrying until ctx ends, so the
// service may start before them), migrates the schema, starts the workers
// and starts serving HTTP. It returns once everything runs.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
	m.metrics = metrics.New()
	if lim := m.memorySeam(c.MemoryLimit); lim > 0 {
		m.prevMemLimit, m.memLimitSet = debug.SetMemoryLimit(lim), true
	}

	var err error
	m.store, err = store.Open(ctx, c.DatabaseURL, m.storeSeam(store.Options{MaxConns: c.MaxConns(), Method: c.UpsertMethod, MaxTopics: c.StatsMaxTopics}))
	if err != nil {
		return err
	}
	if err := m.retry(ctx, "migrate the schema", func() error {
		applied, err := m.store.Migrate(ctx)
		if len(applied) > 0 {
			m.Log.Info("schema migrated", "versions", applied)
		}
		return err
	}); err != nil {
		return err
	}

	m.queue, err = queue.Open(ctx, c.RedisURL, queue.Options{
		Prefix: c.StreamPrefix, MaxLen: c.QueueMaxLen, Group: true, IdempotencyTTL: c.IdempotencyTTL,
		PoolSize: 4*c.WorkerCount + 64, // workers, grouped appends, reads of the API, with room to spare
	})
	if err != nil {
		return err
	}
	if err := m.retry(ctx, "set up the Redis stream", func() error { return m.queue.Setup(ctx) }); err != nil {
		return err
	}

	m.checkPersistence(ctx)

	wq, wst, err := m.workerSeams(ctx)
	if err != nil {
		return err
	}
	m.pool = worker.New(worker.Config{
		Instance: c.InstanceID, Count: c.WorkerCount, BatchSize: c.BatchSize, BatchEvents: c.BatchEvents,
		ClaimIdle: c.ClaimIdle, MaxAttempts: c.MaxAttempts, MaxDeliveries: c.MaxDeliveries,
		Linger: c.BatchLinger, BatchTimeout: c.BatchTimeout,
	}, wq, wst, m.metrics, m.Log)
	m.pool.Start()
	if c.LedgerRetention > 0 {
		m.pruner = worker.NewPruner(worker.PruneConfig{Retention: c.LedgerRetention, Interval: c.LedgerPruneEvery},
			m.horizonSeam(), m.store, m.metrics, m.Log)
		m.pruner.Start()
	}

	m.api = api.New(m.apiSeam(api.Options{
		MaxBatch: c.MaxBatch, MaxBodyBytes: c.MaxBodyBytes, APIToken: c.APIToken,
		RetryAfter: c.RetryAfter, Workers: c.WorkerCount, PublishTimeout: c.PublishTimeout,
		Decode:    m.decodeSeam(),
		PageBytes: c.EventsPageBytes, ReadConcurrency: c.ReadConcurrency, QueueMaxBytes: c.QueueMaxBytes,
		Blocked: m.pool.Blocked,
	}), m.publishSeam(), m.store, m.metrics, m.Log)
	addr := m.Listen
	if addr == "" {
		addr = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	}
	m.ln, err = net.Listen("tcp", addr)
	if err != nil {
		_ = m.pool.Stop(ctx)
		return fmt.Errorf("app: listen on %s (APP_HOST, APP_PORT): %w", addr, err)
	}
	if c.MaxConnections > 0 {
		m.ln = m.listenerSeam(netutil.LimitListener(m.ln, c.MaxConnections), m.ln)
	}
	m.http = &http.Server{
		Handler:           m.api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.http.Serve(m.ln) }()

	if c.DebugAddr != "" {
		if err := m.serveDebug(c.DebugAddr); err != nil {
			return err
		}
	}

	pctx, cancel := context.WithCancel(context.Background())
	m.stopPoll, m.polled = cancel, make(chan struct{})
	go m.poll(pctx)

	m.Log.Info("serving", "addr", m.ln.Addr().String(), "instance", c.InstanceID,
		"workers", c.WorkerCount, "batch_size", c.BatchSize, "batch_events", c.BatchEvents, "stream", m.queue.Stream(),
		"memory_limit", debug.SetMemoryLimit(-1), "max_connections", c.MaxConnections, "read_concurrency", c.ReadConcurrency)
	m.logAuth()
	return nil
}

// logAuth says at start whether auth is on and what it covers.
func (m *Main) logAuth() {
	const reads = "GET /events, /stats, /audit, /audit/summary, /metrics, /ready, /health, /docs, /openapi.json"
	if m.Config.APIToken == "" {
		m.Log.Warn("auth off: API_TOKEN is not set, so POST /publish needs no token; reads are open too",
			"auth", false, "open", "POST /publish, "+reads)
		return
	}
	m.Log.Info("auth on: POST /publish needs Authorization: Bearer <API_TOKEN>; reads need no token",
		"auth", true, "protected", "POST /publish", "open", reads)
}

// Addr is the address the HTTP server listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// URL is the base URL of the HTTP API.
func (m *Main) URL() string {
	addr := m.Addr()
	for _, pfx := range []string{"[::]:", "0.0.0.0:"} {
		if strings.HasPrefix(addr, pfx) {
			addr = "127.0.0.1:" + strings.TrimPrefix(addr, pfx)
		}
	}
	return "http://" + addr
}

// LogDrainCut is what the binary logs when SIGTERM's drain ran out of
// SHUTDOWN_TIMEOUT (Close returned an error): the work in flight was
// abandoned unacknowledged, to be redelivered.
const LogDrainCut = "shutdown cut short"

// Close drains: /ready turns 503 and new publishes are refused, requests in
// flight finish, workers apply and acknowledge what the stream holds, then
// connections close. When ctx ends first the drain is cut short (nothing
// acknowledged is lost: unapplied entries stay in Redis).
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.api != nil {
		m.api.Drain()
		// Keep answering for a moment: /ready says 503 and publishes are
		// refused, so load balancers and clients move away before the
		// listener closes.
		if g := min(m.Config.DrainGrace, m.Config.ShutdownTime/2); g > 0 {
			t := time.NewTimer(g)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	if m.debug != nil {
		_ = m.debug.Close()
	}
	if m.http != nil {
		if err := m.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("app: http shutdown: %w", err))
		}
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("app: http serve: %w", err))
		}
	}
	if m.memLimitSet {
		debug.SetMemoryLimit(m.prevMemLimit)
		m.memLimitSet = false
	}
	if m.pool != nil {
		if err := m.pool.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if m.pruner != nil {
		m.pruner.Stop()
	}
	if m.stopPoll != nil {
		m.stopPoll()
		<-m.polled
	}
	if m.queue != nil {
		m.queue.Close()
	}
	if m.store != nil {
		m.store.Close()
	}
	return errors.Join(errs...)
}

// checkPersistence says in the log what Redis's persistence means for the
// guarantee "acknowledged means durable". It does not refuse to start: the
// operator may know better (and the negative controls need a Redis
// without AOF).
func (m *Main) checkPersistence(ctx context.Context) {
	aof, fsync, err := m.queue.Persistence(ctx)
	switch {
	case err != nil:
		m.Log.Warn("cannot read Redis persistence settings; acknowledged events are durable only with appendonly yes", "err", err)
	case aof != "yes":
		m.Log.Error("Redis runs without AOF (appendonly no): a Redis restart loses acknowledged events; set appendonly yes")
	case fsync == "everysec":
		m.Log.Warn("Redis appendfsync everysec: a machine crash, or a Redis kill while its disk is slow, can lose up to about 2 s of acknowledged events; appendfsync always closes that window")
	case fsync == "no":
		m.Log.Warn("Redis appendfsync no: a machine crash can lose acknowledged events; appendfsync always closes that window")
	default:
		m.Log.Info("Redis persistence", "appendonly", aof, "appendfsync", fsync)
	}
}

// poll refreshes the queue gauges, and Redis's memory for QUEUE_MAX_BYTES,
// every second.
func (m *Main) poll(ctx context.Context) {
	defer close(m.polled)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		if d, err := m.queue.Depth(qctx); err == nil {
			m.metrics.QueueDepth.Set(float64(d.Backlog))
			m.metrics.Pending.Set(float64(d.Pending))
			m.metrics.DeadLettered.Set(float64(d.DeadLettered))
		}
		if m.Config.QueueMaxBytes > 0 {
			if n, err := m.queue.MemoryUsed(qctx); err == nil {
				m.api.SetRedisMemory(n)
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retry runs fn until it succeeds or ctx ends, logging each failure.
func (m *Main) retry(ctx context.Context, what string, fn func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		m.Log.Warn("cannot "+what+" yet, retrying", "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("app: %s: %w (last error: %w)", what, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// serveDebug exposes net/http/pprof on its own listener (DEBUG_ADDR), never
// on the API port.
func (m *Main) serveDebug(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("app: DEBUG_ADDR %s: %w", addr, err)
	}
	m.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.debug.Serve(ln) }()
	m.Log.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}

// Healthcheck asks the service on 127.0.0.1:port for /health and returns a
// process exit code: the binary's "healthcheck" subcommand, for images
// without a shell.
func Healthcheck(port int) int {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/health")
	if err != nil {
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
