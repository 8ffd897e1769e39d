package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

// BenchmarkPublishToCommit publishes 100,000 events (30% duplicates)
// through the HTTP API and waits until every one is committed, on a durable
// PostgreSQL (fsync on) and Redis with AOF. It reports events/s from the
// first request to the drained queue, for 100 events per request and for
// single-event requests.
//
//	go test ./service/app -run '^$' -bench PublishToCommit -benchtime 1x
func BenchmarkPublishToCommit(b *testing.B) {
	ctx := context.Background()
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{Durable: true})
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	rd, err := devenv.StartRedis(ctx, devenv.RedisOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()

	for _, c := range []struct {
		name        string
		perRequest  int
		concurrency int
	}{
		{"100-per-request", 100, 16},
		{"1-per-request", 1, 64},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := range b.N {
				db, err := pg.CreateDatabase(ctx, fmt.Sprintf("bench_%d_%d", c.perRequest, i))
				if err != nil {
					b.Fatal(err)
				}
				cfg := config.Defaults()
				cfg.DatabaseURL, cfg.RedisURL = db, rd.URL()
				cfg.StreamPrefix = fmt.Sprintf("bench:%d:%d:", c.perRequest, i)
				cfg.DrainGrace = 0
				m := &app.Main{Config: cfg, Log: app.NewLogger(discard{}, "error"), Listen: "127.0.0.1:0"}
				if err := m.Run(ctx); err != nil {
					b.Fatal(err)
				}
				src, err := gen.New(gen.Config{Seed: int64(i + 1), RunID: "bench", Events: 100_000, DuplicateRatio: 0.3,
					Topics: 10, EventsPerRequest: c.perRequest, PayloadBytes: 64})
				if err != nil {
					b.Fatal(err)
				}
				reqs := src.All()
				b.ResetTimer()
				start := time.Now()
				publishAll(b, m.URL(), reqs, c.concurrency)
				published := time.Since(start)
				waitCommitted(b, m.URL(), 100_000)
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(100_000/elapsed.Seconds(), "events/s")
				b.ReportMetric(100_000/published.Seconds(), "acked-events/s")
				if err := m.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func publishAll(b *testing.B, url string, reqs []gen.Request, concurrency int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(reqs)) {
					return
				}
				resp, err := client.Post(url+"/publish", "application/json", bytes.NewReader(reqs[i].Body))
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d publishes failed", n)
	}
}

// waitCommitted polls /stats until every event copy is applied.
func waitCommitted(b *testing.B, url string, copies int64) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var s stats
		resp, err := http.Get(url + "/stats")
		if err == nil {
			err = decodeJSON(resp, &s)
		}
		if err == nil && s.Received == copies && s.QueueDepth == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not committed after 5 minutes: %+v (%v)", s, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
