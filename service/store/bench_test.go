package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// BenchmarkApplyBatch compares the two upsert methods at 100 and 1000
// events per batch (entries of 10 events, all keys new, as under load), on
// a durable PostgreSQL (fsync and synchronous_commit on) of its own.
//
//	go test ./service/store -run '^$' -bench ApplyBatch -benchtime 200x
func BenchmarkApplyBatch(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{Durable: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pg.Close() })
	payload := []byte(`{"message":"benchmark event with a payload of typical size","timestamp":"2026-01-02T03:04:05Z","user":{"id":12345,"tags":["a","b","c"]}}`)

	for _, size := range []int{100, 1000} {
		for _, method := range methods {
			b.Run(fmt.Sprintf("events=%d/method=%s", size, method), func(b *testing.B) {
				url, err := pg.CreateDatabase(ctx, fmt.Sprintf("bench_%s_%d", method, size))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = pg.DropDatabase(context.Background(), fmt.Sprintf("bench_%s_%d", method, size)) })
				st := openStore(b, url, method)
				if _, err := st.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				const perEntry = 10
				batch := make([]store.Entry, size/perEntry)
				n := 0
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					b.StopTimer()
					for i := range batch {
						evs := make([]event.Event, perEntry)
						for j := range evs {
							n++
							evs[j] = event.Event{EventID: fmt.Sprintf("id-%09d", n), Topic: fmt.Sprintf("topic-%d", n%8), Source: "bench",
								Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Payload: payload}
						}
						batch[i] = mkEntry(fmt.Sprintf("tok-%d", n), evs...)
					}
					b.StartTimer()
					res, err := st.ApplyBatch(ctx, "bench", batch)
					if err != nil || res.Inserted != size {
						b.Fatalf("apply: %+v, %v", res, err)
					}
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
