package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// With nothing set, the configuration is the documented defaults.
func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.FromEnv(env())
	if err != nil {
		t.Fatal(err)
	}
	d := config.Defaults()
	if c != d {
		t.Fatalf("FromEnv(nothing) = %+v\nDefaults() = %+v", c, d)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"APP_PORT 8080", c.Port == 8080},
		{"WORKER_COUNT 4", c.WorkerCount == 4},
		{"MAX_BATCH 10000", c.MaxBatch == 10_000},
		{"MAX_BODY_BYTES 10 MiB", c.MaxBodyBytes == 10<<20},
		{"API_TOKEN unset", c.APIToken == ""},
		{"APP_HOST 127.0.0.1 (this machine only)", c.Host == "127.0.0.1"},
		{"LOG_LEVEL info", c.LogLevel == "info"},
		{"UPSERT_METHOD unnest", c.UpsertMethod == "unnest"},
		{"SHUTDOWN_TIMEOUT 30s", c.ShutdownTime == 30*time.Second},
		{"RETRY_AFTER 1s", c.RetryAfter == time.Second},
		{"PUBLISH_TIMEOUT 5s", c.PublishTimeout == 5*time.Second},
		{"BATCH_TIMEOUT 30s", c.BatchTimeout == 30*time.Second},
		{"IDEMPOTENCY_TTL 24h", c.IdempotencyTTL == 24*time.Hour},
		{"LEDGER_RETENTION 1h (pruning on)", c.LedgerRetention == time.Hour},
		{"LEDGER_PRUNE_INTERVAL 1m", c.LedgerPruneEvery == time.Minute},
		{"MAX_DELIVERIES 20", c.MaxDeliveries == 20},
		{"positive limits", c.BatchSize > 0 && c.QueueMaxLen > 0 && c.MaxAttempts > 0 && c.ClaimIdle > 0},
		{"a stream prefix", c.StreamPrefix != ""},
		{"an instance ID", c.InstanceID != ""},
		{"pool of WORKER_COUNT + 8", c.MaxConns() == c.WorkerCount+8},
		{"valid URLs", strings.HasPrefix(c.DatabaseURL, "postgres://") && strings.HasPrefix(c.RedisURL, "redis://")},
	}
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("default %s: %+v", ck.name, c)
		}
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

// Every setting is read; spaces around values are ignored.
func TestSettingsAreRead(t *testing.T) {
	t.Parallel()
	c, err := config.FromEnv(env(
		"APP_PORT", " 9090 ", "DATABASE_URL", "postgresql://u:p@db:5432/x?sslmode=disable", "REDIS_URL", "rediss://r:6380/2",
		"INSTANCE_ID", "node-7", "WORKER_COUNT", "16", "BATCH_SIZE", "50", "BATCH_EVENTS", "0", "QUEUE_MAX_LEN", "5000", "MAX_ATTEMPTS", "3",
		"MAX_BATCH", "100", "MAX_BODY_BYTES", "2048", "CLAIM_IDLE", "5s", "STREAM_PREFIX", "x:", "SHUTDOWN_TIMEOUT", "45",
		"API_TOKEN", "tok", "LOG_LEVEL", "DEBUG", "DB_MAX_CONNS", "7", "RETRY_AFTER", "3s", "UPSERT_METHOD", "Copy",
		"PUBLISH_TIMEOUT", "2500ms", "BATCH_TIMEOUT", "10", "IDEMPOTENCY_TTL", "90m", "APP_HOST", "0.0.0.0",
	))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Defaults()
	want.Port, want.DatabaseURL, want.RedisURL = 9090, "postgresql://u:p@db:5432/x?sslmode=disable", "rediss://r:6380/2"
	want.InstanceID, want.WorkerCount, want.BatchSize, want.QueueMaxLen, want.MaxAttempts = "node-7", 16, 50, 5000, 3
	want.MaxBatch, want.MaxBodyBytes, want.ClaimIdle, want.StreamPrefix, want.ShutdownTime = 100, 2048, 5*time.Second, "x:", 45*time.Second
	want.BatchEvents, want.PublishTimeout, want.BatchTimeout = 0, 2500*time.Millisecond, 10*time.Second
	want.IdempotencyTTL = 90 * time.Minute
	want.Host = "0.0.0.0"
	want.APIToken, want.LogLevel, want.DBMaxConns, want.RetryAfter, want.UpsertMethod = "tok", "debug", 7, 3*time.Second, "copy"
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if c.MaxConns() != 7 {
		t.Errorf("MaxConns() = %d with DB_MAX_CONNS=7", c.MaxConns())
	}
}

// Durations are Go durations or plain (possibly fractional) seconds.
func TestDurations(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"1500ms", 1500 * time.Millisecond},
		{"1m30s", 90 * time.Second},
		{"2h", 2 * time.Hour},
		{"2", 2 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"1.25", 1250 * time.Millisecond},
		{"100ms", 100 * time.Millisecond}, // the minimum of CLAIM_IDLE
		{"0.1", 100 * time.Millisecond},
	}
	for _, tc := range cases {
		c, err := config.FromEnv(env("CLAIM_IDLE", tc.in))
		if err != nil || c.ClaimIdle != tc.want {
			t.Errorf("CLAIM_IDLE=%q: %v, %v; want %v", tc.in, c.ClaimIdle, err, tc.want)
		}
	}
}

// Each bad setting stops the start with one line naming it.
func TestBadSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, value string
	}{
		{"APP_PORT", "0"},
		{"APP_PORT", "65536"},
		{"APP_PORT", "http"},
		{"APP_PORT", "80.5"},
		{"DATABASE_URL", "mysql://u@h/db"},
		{"DATABASE_URL", "localhost:5432"},
		{"DATABASE_URL", "postgres://u@h:port/db"},
		{"REDIS_URL", "http://r:6379"},
		{"REDIS_URL", "redis://r:6379\x7f"},
		{"INSTANCE_ID", "two words"},
		{"WORKER_COUNT", "0"},
		{"WORKER_COUNT", "-1"},
		{"WORKER_COUNT", "1025"},
		{"WORKER_COUNT", "four"},
		{"BATCH_SIZE", "0"},
		{"BATCH_SIZE", "1e3"},
		{"BATCH_EVENTS", "-1"},
		{"BATCH_EVENTS", "5k"},
		{"QUEUE_MAX_LEN", "0"},
		{"QUEUE_MAX_LEN", "99999999999999999999"},
		{"MAX_ATTEMPTS", "0"},
		{"MAX_BATCH", "0"},
		{"MAX_BATCH", "ten"},
		{"MAX_BODY_BYTES", "1023"},
		{"MAX_BODY_BYTES", "10MiB"},
		{"CLAIM_IDLE", "50ms"},
		{"CLAIM_IDLE", "0"},
		{"CLAIM_IDLE", "-5s"},
		{"CLAIM_IDLE", "soon"},
		{"CLAIM_IDLE", "5 s"},
		{"SHUTDOWN_TIMEOUT", "0.5"},
		{"PUBLISH_TIMEOUT", "50ms"},
		{"BATCH_TIMEOUT", "500ms"},
		{"IDEMPOTENCY_TTL", "500ms"},
		{"IDEMPOTENCY_TTL", "721h"},
		{"IDEMPOTENCY_TTL", "forever"},
		{"LEDGER_RETENTION", "30s"},
		{"LEDGER_RETENTION", "-1h"},
		{"LEDGER_RETENTION", "always"},
		{"LEDGER_PRUNE_INTERVAL", "0"},
		{"LEDGER_PRUNE_INTERVAL", "500ms"},
		{"MAX_DELIVERIES", "2"},
		{"MAX_DELIVERIES", "many"},
		{"SHUTDOWN_TIMEOUT", "NaN"},
		{"SHUTDOWN_TIMEOUT", "Inf"},
		{"SHUTDOWN_TIMEOUT", "1e300"},
		{"SHUTDOWN_TIMEOUT", "-1e300"},
		{"LOG_LEVEL", "verbose"},
		{"DB_MAX_CONNS", "-1"},
		{"RETRY_AFTER", "500ms"},
		{"RETRY_AFTER", "x"},
		{"UPSERT_METHOD", "merge"},
		{"CHRONICLE_PLANTED_BUG", "not-a-bug"},
		{"API_TOKEN", "   "},
		{"API_TOKEN", "\t"},
		{"APP_HOST", "example.com"},
		{"APP_HOST", "127.0.0.1:8080"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			_, err := config.FromEnv(env(tc.name, tc.value))
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.name, tc.value)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.name) {
				t.Errorf("error %q does not name %s", msg, tc.name)
			}
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: ") {
				t.Errorf("error %q is not one line starting with \"config: \"", msg)
			}
		})
	}
}

// A URL's password never appears in an error (the error is logged).
func TestBadURLErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	for _, kv := range [][2]string{
		{"DATABASE_URL", "mysql://user:s3cret-pw@h/db"},
		{"DATABASE_URL", "postgres://user:s3cret-pw@h:port/db"},
		{"DATABASE_URL", "postgres://user:s3cret-pw@h/db\x7f"},
		{"REDIS_URL", "http://:s3cret-pw@r:6379"},
		{"REDIS_URL", "redis://:s3cret-pw@r:63 79/0"},
	} {
		_, err := config.FromEnv(env(kv[0], kv[1]))
		if err == nil {
			t.Errorf("%s=%q accepted", kv[0], kv[1])
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%s: the error shows the password: %v", kv[0], err)
		}
		if !strings.Contains(err.Error(), kv[0]) {
			t.Errorf("error %q does not name %s", err, kv[0])
		}
	}
}

// Validate catches what FromEnv cannot be given: an empty prefix or name.
func TestValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(*config.Config)
	}{
		{"STREAM_PREFIX", func(c *config.Config) { c.StreamPrefix = "" }},
		{"INSTANCE_ID", func(c *config.Config) { c.InstanceID = " " }},
		{"INSTANCE_ID", func(c *config.Config) { c.InstanceID = "a\tb" }},
		{"DATABASE_URL", func(c *config.Config) { c.DatabaseURL = "" }},
		{"REDIS_URL", func(c *config.Config) { c.RedisURL = "" }},
	}
	for _, tc := range cases {
		c := config.Defaults()
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Validate with a bad %s: %v", tc.name, err)
		}
	}
}

// LEDGER_RETENTION=0 turns pruning off; any other value is the margin kept.
func TestLedgerRetention(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"0": 0, "1m": time.Minute, "6h": 6 * time.Hour} {
		c, err := config.FromEnv(env("LEDGER_RETENTION", in))
		if err != nil || c.LedgerRetention != want {
			t.Errorf("LEDGER_RETENTION=%q: %v, %v; want %v", in, c.LedgerRetention, err, want)
		}
	}
}
