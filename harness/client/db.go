package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CommitSpan returns how many of the run's events (event_id prefix,
// received in [since, until); a zero bound does not limit) are stored and
// when the last of them was committed.
func CommitSpan(ctx context.Context, databaseURL, prefix string, since, until time.Time) (int64, time.Time, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("client: read commit span: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	var last *time.Time
	err = conn.QueryRow(ctx, `SELECT count(*), max(stored_at) FROM events
		WHERE starts_with(event_id, $1) AND ($2::timestamptz IS NULL OR received_at >= $2)
		  AND ($3::timestamptz IS NULL OR received_at < $3)`, prefix, nullTime(since), nullTime(until)).Scan(&n, &last)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("client: read commit span: %w", err)
	}
	if last == nil {
		return n, time.Time{}, nil
	}
	return n, *last, nil
}

// nullTime is nil for the zero time (no filter), else t.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// FreshDatabase creates an empty database named after hint on the server of
// databaseURL (which must allow CREATE DATABASE) and returns its URL and a
// function that drops it.
func FreshDatabase(ctx context.Context, databaseURL, hint string) (string, func(), error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", nil, fmt.Errorf("client: database URL: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.ToLower(hint) + "_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return "", nil, fmt.Errorf("client: create database %s: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("client: create database %s: %w", name, err)
	}
	fresh := *u
	fresh.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, databaseURL); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	}
	return fresh.String(), drop, nil
}
