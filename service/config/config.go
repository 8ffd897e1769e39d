// Package config reads the service's settings from the environment.
//
// Every setting has one name (the environment variable) and a documented
// default. A bad value stops the start with one line naming the setting.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// Config is the complete configuration of one service instance.
type Config struct {
	Port int // APP_PORT
	// Host is the address to listen on: 127.0.0.1 (this machine only) by
	// default; 0.0.0.0 (every interface) must be asked for, as the
	// container image does.
	Host        string // APP_HOST
	DatabaseURL string // DATABASE_URL
	RedisURL    string // REDIS_URL

	// InstanceID names this instance; worker (consumer) names derive from it,
	// so a restarted instance finds its own pending entries. Two live
	// instances must not share it.
	InstanceID string // INSTANCE_ID, default: hostname

	WorkerCount  int           // WORKER_COUNT
	BatchSize    int           // BATCH_SIZE: stream entries read per batch, at most
	BatchEvents  int           // BATCH_EVENTS: events per batch, about (0: BATCH_SIZE alone decides)
	BatchLinger  time.Duration // BATCH_LINGER: wait to fill a batch that is not full
	QueueMaxLen  int64         // QUEUE_MAX_LEN: unapplied events before /publish answers 503
	MaxAttempts  int           // MAX_ATTEMPTS before an entry is dead-lettered
	MaxBatch     int           // MAX_BATCH: events per request
	MaxBodyBytes int64         // MAX_BODY_BYTES
	ClaimIdle    time.Duration // CLAIM_IDLE: idle time after which another consumer's pending entry is claimed
	StreamPrefix string        // STREAM_PREFIX: prefix of every Redis key the service uses
	ShutdownTime time.Duration // SHUTDOWN_TIMEOUT
	// PublishTimeout bounds how long /publish waits for Redis to take and
	// confirm a request's entry before it answers 503.
	PublishTimeout time.Duration // PUBLISH_TIMEOUT
	// IdempotencyTTL is how long /publish remembers an Idempotency-Key
	// after the request that carried it was appended: a retry within it
	// is acknowledged without being applied again.
	IdempotencyTTL time.Duration // IDEMPOTENCY_TTL
	// BatchTimeout bounds one batch transaction, as seen by the worker: a
	// paused or silently unreachable PostgreSQL cannot enforce its own
	// statement_timeout, so past this the worker drops the connection and
	// retries the batch (whose first attempt may still commit: the ledger
	// recognises it).
	BatchTimeout time.Duration // BATCH_TIMEOUT
	DrainGrace   time.Duration // DRAIN_GRACE: on SIGTERM, how long /ready answers 503 before the listener closes
	APIToken     string        // API_TOKEN: when set, /publish needs "Authorization: Bearer <token>"; blank (whitespace) is refused
	LogLevel     string        // LOG_LEVEL: debug, info, warn, error
	DBMaxConns   int           // DB_MAX_CONNS
	RetryAfter   time.Duration // RETRY_AFTER: the Retry-After hint sent with 503
	UpsertMethod string        // UPSERT_METHOD: unnest (default) or copy
	DebugAddr    string        // DEBUG_ADDR: when set, net/http/pprof listens there (e.g. 127.0.0.1:6060)
	// Bounds that hold memory and answers in check under hostile input
	// (issue 16).
	EventsPageBytes int   // EVENTS_PAGE_BYTES: one /events page, about (the cursor continues)
	ReadConcurrency int   // READ_CONCURRENCY: reads of data served at once (0: no bound)
	QueueMaxBytes   int64 // QUEUE_MAX_BYTES: Redis memory at which /publish answers 503 (0: no bound)
	StatsMaxTopics  int   // STATS_MAX_TOPICS: topics (and workers) listed by /stats and /audit/summary

	// Running for weeks (issue 15). MaxDeliveries is how many times an
	// entry may be delivered without being acknowledged before it is
	// dead-lettered ("delivered N times without an acknowledgement"): an
	// entry whose processing kills the process is never refused for its
	// data (MAX_ATTEMPTS counts those), only redelivered, so without this
	// bound it would come back forever. It sits above what restarts alone
	// produce: each kill of an instance redelivers what it had in flight
	// once. LedgerRetention is the margin the ledger pruner keeps before
	// the oldest entry still in the stream: ledger rows of entries older
	// than that are deleted in the background; 0 turns pruning off (the
	// ledger then grows by one row per request, forever).
	MaxDeliveries    int           // MAX_DELIVERIES
	LedgerRetention  time.Duration // LEDGER_RETENTION
	LedgerPruneEvery time.Duration // LEDGER_PRUNE_INTERVAL: time between pruning passes
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (debug.SetMemoryLimit): past it the collector works harder rather
	// than let the heap grow. 0: the service sets none (GOMEMLIMIT, when
	// set, still applies); when GOMEMLIMIT is set and MEMORY_LIMIT is
	// not, GOMEMLIMIT is kept.
	MemoryLimit int64 // MEMORY_LIMIT
	// MaxConnections bounds the HTTP connections served at once; past it
	// a new connection waits in the kernel's backlog until one closes
	// (0: no bound).
	MaxConnections int // MAX_CONNECTIONS
	// PlantedBug switches on a negative control (CHRONICLE_PLANTED_BUG);
	// only binaries built with the plantedbugs tag accept one.
	PlantedBug string
}

// DefaultMemoryLimit is MEMORY_LIMIT's default: above the peak RSS of the
// fault scenarios' backlogs, a bound for everything else.
const DefaultMemoryLimit = 512 << 20

// MaxIdempotencyTTL bounds IDEMPOTENCY_TTL: key records are kept in
// Redis's memory, so their number is the request rate times the TTL.
const MaxIdempotencyTTL = 30 * 24 * time.Hour

// MinLedgerRetention bounds LEDGER_RETENTION (when not 0): the margin must
// cover a second copy of one append, which a Redis client retrying a
// command writes seconds after the first, with the same token.
const MinLedgerRetention = time.Minute

// MinMaxDeliveries bounds MAX_DELIVERIES: an entry redelivered alongside a
// crashing one is delivered up to 3 times before it is applied alone
// (worker: redelivered entries are applied one by one).
const MinMaxDeliveries = 3

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "chronicleweaver"
	}
	return Config{
		Port:           8080,
		Host:           "127.0.0.1",
		DatabaseURL:    "postgres://postgres@127.0.0.1:5432/chronicleweaver?sslmode=disable",
		RedisURL:       "redis://127.0.0.1:6379/0",
		InstanceID:     host,
		WorkerCount:    4,
		BatchSize:      200,
		BatchEvents:    5_000,
		BatchLinger:    2 * time.Millisecond,
		QueueMaxLen:    1_000_000,
		MaxAttempts:    5,
		MaxBatch:       10_000,
		MaxBodyBytes:   10 << 20,
		ClaimIdle:      30 * time.Second,
		StreamPrefix:   "chronicle:",
		ShutdownTime:   30 * time.Second,
		PublishTimeout: 5 * time.Second,
		IdempotencyTTL: 24 * time.Hour,
		BatchTimeout:   30 * time.Second,
		DrainGrace:     time.Second,
		LogLevel:       "info",
		DBMaxConns:     0, // 0: WorkerCount + 8
		RetryAfter:     time.Second,
		UpsertMethod:   "unnest",

		EventsPageBytes: 4 << 20,
		ReadConcurrency: 4,
		QueueMaxBytes:   1 << 30,
		StatsMaxTopics:  1000,

		MaxDeliveries:    20,
		LedgerRetention:  time.Hour,
		LedgerPruneEvery: time.Minute,
		MemoryLimit:      DefaultMemoryLimit,
		MaxConnections:   4096,
	}
}

// FromEnv reads the configuration from getenv (os.Getenv in production).
// The error names the first bad setting.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults()
	p := parser{getenv: getenv}
	p.int("APP_PORT", &c.Port, 1, 65535)
	p.str("APP_HOST", &c.Host)
	p.str("DATABASE_URL", &c.DatabaseURL)
	p.str("REDIS_URL", &c.RedisURL)
	p.str("INSTANCE_ID", &c.InstanceID)
	p.int("WORKER_COUNT", &c.WorkerCount, 1, 1024)
	p.int("BATCH_SIZE", &c.BatchSize, 1, 100_000)
	p.int("BATCH_EVENTS", &c.BatchEvents, 0, 10_000_000)
	p.duration("BATCH_LINGER", &c.BatchLinger, 0)
	p.int64("QUEUE_MAX_LEN", &c.QueueMaxLen, 1, 1<<50)
	p.int("MAX_ATTEMPTS", &c.MaxAttempts, 1, 1000)
	p.int("MAX_BATCH", &c.MaxBatch, 1, 1_000_000)
	p.int64("MAX_BODY_BYTES", &c.MaxBodyBytes, 1024, 1<<32)
	p.duration("CLAIM_IDLE", &c.ClaimIdle, 100*time.Millisecond)
	p.str("STREAM_PREFIX", &c.StreamPrefix)
	p.duration("SHUTDOWN_TIMEOUT", &c.ShutdownTime, time.Second)
	p.duration("PUBLISH_TIMEOUT", &c.PublishTimeout, 100*time.Millisecond)
	p.duration("IDEMPOTENCY_TTL", &c.IdempotencyTTL, time.Second)
	p.duration("BATCH_TIMEOUT", &c.BatchTimeout, time.Second)
	p.duration("DRAIN_GRACE", &c.DrainGrace, 0)
	p.token("API_TOKEN", &c.APIToken)
	p.enum("LOG_LEVEL", &c.LogLevel, "debug", "info", "warn", "error")
	p.int("DB_MAX_CONNS", &c.DBMaxConns, 0, 10_000)
	p.duration("RETRY_AFTER", &c.RetryAfter, time.Second)
	p.enum("UPSERT_METHOD", &c.UpsertMethod, "unnest", "copy")
	p.str("DEBUG_ADDR", &c.DebugAddr)
	p.int("EVENTS_PAGE_BYTES", &c.EventsPageBytes, 64<<10, 1<<30)
	p.int("READ_CONCURRENCY", &c.ReadConcurrency, 0, 1024)
	p.int64("QUEUE_MAX_BYTES", &c.QueueMaxBytes, 0, 1<<50)
	p.int("STATS_MAX_TOPICS", &c.StatsMaxTopics, 1, 10_000_000)
	p.int("MAX_DELIVERIES", &c.MaxDeliveries, MinMaxDeliveries, 10_000)
	p.duration("LEDGER_RETENTION", &c.LedgerRetention, 0)
	p.duration("LEDGER_PRUNE_INTERVAL", &c.LedgerPruneEvery, time.Second)
	if getenv("MEMORY_LIMIT") == "" && getenv("GOMEMLIMIT") != "" {
		c.MemoryLimit = 0 // the runtime's GOMEMLIMIT holds
	}
	p.int64("MEMORY_LIMIT", &c.MemoryLimit, 0, 1<<50)
	p.int("MAX_CONNECTIONS", &c.MaxConnections, 0, 1_000_000)
	p.str(planted.EnvVar, &c.PlantedBug)
	if p.err != nil {
		return Config{}, p.err
	}
	return c, c.Validate()
}

// Validate checks what single settings cannot: URLs and names.
func (c Config) Validate() error {
	if err := checkURL("DATABASE_URL", c.DatabaseURL, "postgres", "postgresql"); err != nil {
		return err
	}
	if err := checkURL("REDIS_URL", c.RedisURL, "redis", "rediss", "unix"); err != nil {
		return err
	}
	if c.Host != "localhost" && net.ParseIP(c.Host) == nil {
		return fmt.Errorf("config: APP_HOST %q: must be an IP address (127.0.0.1: this machine only, 0.0.0.0: every interface) or localhost", c.Host)
	}
	if strings.TrimSpace(c.InstanceID) == "" || strings.ContainsAny(c.InstanceID, " \t\n") {
		return fmt.Errorf("config: INSTANCE_ID %q: must be a non-empty name without spaces", c.InstanceID)
	}
	if c.IdempotencyTTL > MaxIdempotencyTTL {
		return fmt.Errorf("config: IDEMPOTENCY_TTL=%q: must be at most %s", c.IdempotencyTTL, MaxIdempotencyTTL)
	}
	if c.LedgerRetention != 0 && c.LedgerRetention < MinLedgerRetention {
		return fmt.Errorf("config: LEDGER_RETENTION=%q: must be 0 (no pruning) or at least %s", c.LedgerRetention, MinLedgerRetention)
	}
	if c.StreamPrefix == "" {
		return errors.New("config: STREAM_PREFIX: must not be empty")
	}
	if c.MemoryLimit > 0 && c.MemoryLimit < 32<<20 {
		return fmt.Errorf("config: MEMORY_LIMIT=%d: must be 0 (none) or at least %d bytes (32 MiB)", c.MemoryLimit, 32<<20)
	}
	return planted.Check(c.PlantedBug)
}

// MaxConns is the PostgreSQL pool size.
func (c Config) MaxConns() int {
	if c.DBMaxConns > 0 {
		return c.DBMaxConns
	}
	return c.WorkerCount + 8
}

func checkURL(name, raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// The *url.Error repeats the raw URL, password included: keep
		// only the reason.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("config: %s: not a URL: %w", name, err)
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return fmt.Errorf("config: %s %q: scheme must be one of %s", name, redact(u), strings.Join(schemes, ", "))
}

func redact(u *url.URL) string {
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

type parser struct {
	getenv func(string) string
	err    error
}

func (p *parser) lookup(name string) (string, bool) {
	if p.err != nil {
		return "", false
	}
	v := strings.TrimSpace(p.getenv(name))
	return v, v != ""
}

func (p *parser) fail(name, v, why string) {
	p.err = fmt.Errorf("config: %s=%q: %s", name, v, why)
}

func (p *parser) str(name string, dst *string) {
	if v, ok := p.lookup(name); ok {
		*dst = v
	}
}

// token reads a secret: unset means none, but a value of only whitespace
// is refused (it would silently turn auth off). The value is not echoed.
func (p *parser) token(name string, dst *string) {
	if p.err != nil {
		return
	}
	raw := p.getenv(name)
	if raw != "" && strings.TrimSpace(raw) == "" {
		p.err = fmt.Errorf("config: %s is set but blank (only whitespace): set a token, or unset it to turn auth off", name)
		return
	}
	*dst = strings.TrimSpace(raw)
}

func (p *parser) int(name string, dst *int, lo, hi int) {
	v, ok := p.lookup(name)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return
	}
	*dst = n
}

func (p *parser) int64(name string, dst *int64, lo, hi int64) {
	v, ok := p.lookup(name)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return
	}
	*dst = n
}

// duration accepts Go durations ("30s", "500ms") and plain integers as seconds.
func (p *parser) duration(name string, dst *time.Duration, lo time.Duration) {
	v, ok := p.lookup(name)
	if !ok {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseFloat(v, 64)
		// NaN, infinities and values past time.Duration's range have no
		// defined conversion to a Duration.
		if nerr != nil || math.IsNaN(n) || math.Abs(n) > math.MaxInt64/float64(time.Second) {
			p.fail(name, v, `must be a duration such as "30s" or a number of seconds`)
			return
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d < lo {
		p.fail(name, v, fmt.Sprintf("must be at least %s", lo))
		return
	}
	*dst = d
}

func (p *parser) enum(name string, dst *string, allowed ...string) {
	v, ok := p.lookup(name)
	if !ok {
		return
	}
	v = strings.ToLower(v)
	for _, a := range allowed {
		if v == a {
			*dst = v
			return
		}
	}
	p.fail(name, v, "must be one of "+strings.Join(allowed, ", "))
}
