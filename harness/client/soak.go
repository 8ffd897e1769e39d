package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

// The readings of a soak run (harness/scenario's sampler): the service's
// Prometheus /metrics, Redis's INFO memory and PostgreSQL's table sizes.
// Each reader does one read; the parsers are separate so they can be tested
// on text.

// maxMetricsBody bounds a /metrics answer.
const maxMetricsBody = 4 << 20

// Metrics GETs the target's /metrics (Prometheus text format).
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("client: GET /metrics: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return nil, fmt.Errorf("client: GET /metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Method: http.MethodGet, Path: "/metrics", Status: resp.StatusCode, Body: snippet(b)}
	}
	return b, nil
}

// MetricValue finds the sample of metric name without labels (or, for a
// labelled metric, the sum of its samples) in Prometheus text; ok is false
// when there is none.
func MetricValue(text []byte, name string) (v float64, ok bool, err error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), maxMetricsBody)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return 0, false, fmt.Errorf("client: metric %s: unclosed labels in %q", name, line)
			}
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false, fmt.Errorf("client: metric %s: no value in %q", name, line)
		}
		f, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("client: metric %s: value %q: %w", name, fields[0], err)
		}
		v += f
		ok = true
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("client: metrics: %w", err)
	}
	return v, ok, nil
}

// InfoField is field's value in a Redis INFO reply ("field:value" lines),
// as a whole number.
func InfoField(info, field string) (int64, error) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("client: INFO %s %q: %w", field, v, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("client: INFO: no %s", field)
}

// RedisUsedMemory reads used_memory (INFO memory) from the Redis at
// redisURL (redis://HOST:PORT/DB).
func RedisUsedMemory(ctx context.Context, redisURL string) (int64, error) {
	u, err := url.Parse(redisURL)
	if err != nil || u.Host == "" {
		return 0, fmt.Errorf("client: Redis URL %q: want redis://HOST:PORT/DB", redisURL)
	}
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	info, err := devenv.RedisCommand(ctx, u.Host, "INFO", "memory")
	if err != nil {
		return 0, fmt.Errorf("client: INFO memory: %w", err)
	}
	return InfoField(info, "used_memory")
}

// TableSize is a table's size on disk: everything (pg_total_relation_size:
// heap, indexes, TOAST) and its indexes alone.
type TableSize struct {
	Total   int64
	Indexes int64
}

// DBSizes reads the sizes of tables (which must exist) and the row count of
// countTable ("" for none) from the PostgreSQL at databaseURL, in one
// connection.
func DBSizes(ctx context.Context, databaseURL string, tables []string, countTable string) (map[string]TableSize, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, 0, fmt.Errorf("client: table sizes: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sizes := make(map[string]TableSize, len(tables))
	for _, t := range tables {
		var s TableSize
		if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass), pg_indexes_size($1::regclass)`, t).
			Scan(&s.Total, &s.Indexes); err != nil {
			return nil, 0, fmt.Errorf("client: size of table %s: %w", t, err)
		}
		sizes[t] = s
	}
	var rows int64
	if countTable != "" {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+ident(countTable)).Scan(&rows); err != nil {
			return nil, 0, fmt.Errorf("client: rows of %s: %w", countTable, err)
		}
	}
	return sizes, rows, nil
}
