package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicleweaver/chronicleweaver/harness/client"
)

// A /metrics text as the service's Prometheus handler writes it: the
// sampler reads RSS and goroutines from it, and a metric whose name only
// starts like the one asked for is not it.
func TestMetricValue(t *testing.T) {
	t.Parallel()
	text := []byte(`# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_goroutines_extra 7
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.5165824e+07
chronicle_published_total{outcome="ok"} 10
chronicle_published_total{outcome="unknown",x="a}b"} 2.5
`)
	cases := []struct {
		name string
		want float64
		ok   bool
	}{
		{"go_goroutines", 42, true},
		{"process_resident_memory_bytes", 25165824, true},
		{"chronicle_published_total", 12.5, true}, // labelled samples summed
		{"go_gorout", 0, false},
		{"process_virtual_memory_bytes", 0, false},
	}
	for _, c := range cases {
		v, ok, err := client.MetricValue(text, c.name)
		if err != nil || ok != c.ok || v != c.want {
			t.Errorf("MetricValue(%s) = %v, %v, %v; want %v, %v", c.name, v, ok, err, c.want, c.ok)
		}
	}
	if _, _, err := client.MetricValue([]byte("go_goroutines many\n"), "go_goroutines"); err == nil || !strings.Contains(err.Error(), `value "many"`) {
		t.Errorf("a value that is no number: %v, want an error naming it", err)
	}
}

// INFO memory as Redis answers it (CRLF lines, sections).
func TestInfoField(t *testing.T) {
	t.Parallel()
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_rss:4194304\r\n"
	if n, err := client.InfoField(info, "used_memory"); err != nil || n != 1048576 {
		t.Errorf("used_memory = %d, %v; want 1048576", n, err)
	}
	if n, err := client.InfoField(info, "used_memory_rss"); err != nil || n != 4194304 {
		t.Errorf("used_memory_rss = %d, %v; want 4194304", n, err)
	}
	if _, err := client.InfoField("# Memory\r\n", "used_memory"); err == nil || !strings.Contains(err.Error(), "no used_memory") {
		t.Errorf("missing field: %v", err)
	}
	if _, err := client.InfoField("used_memory:lots\r\n", "used_memory"); err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("a value that is no number: %v", err)
	}
}

// The soak's readers against the real servers: Redis's used memory is
// read (a bad URL is an error naming it); the sizes of a table and its
// indexes, and its rows, are read from PostgreSQL, and a table that does
// not exist is an error naming it.
func TestSoakReaders(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, time.Minute)
	before, err := client.RedisUsedMemory(ctx, env.Redis.URL())
	if err != nil || before <= 0 {
		t.Fatalf("RedisUsedMemory = %d, %v", before, err)
	}
	if _, err := client.RedisUsedMemory(ctx, "not a url"); err == nil || !strings.Contains(err.Error(), "Redis URL") {
		t.Errorf("a bad Redis URL: %v", err)
	}

	dbURL := env.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE ledger (token text PRIMARY KEY, pad text NOT NULL);
		INSERT INTO ledger SELECT g::text, repeat('x', 100) FROM generate_series(1, 2000) g`); err != nil {
		t.Fatal(err)
	}
	sizes, rows, err := client.DBSizes(ctx, dbURL, []string{"ledger"}, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	if s := sizes["ledger"]; rows != 2000 || s.Indexes <= 0 || s.Total <= s.Indexes || s.Total < 2000*100 {
		t.Errorf("DBSizes = %+v, %d rows; want 2000 rows, indexes > 0 and a total above them and the data", s, rows)
	}
	if _, _, err := client.DBSizes(ctx, dbURL, []string{"no_such_table"}, ""); err == nil || !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("a missing table: %v, want an error naming it", err)
	}
}
