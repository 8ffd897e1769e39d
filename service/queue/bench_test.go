package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

const benchEvents = 100 // events per publish request

func benchBatch(n int) [][]byte {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{EventID: fmt.Sprintf("event-%06d", i), Topic: "orders", Source: "bench",
			Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Payload:   []byte(`{"message":"benchmark event with a payload of typical size","timestamp":"2026-01-02T03:04:05Z","user":{"id":12345}}`)}
	}
	bodies := [][]byte{event.AppendBatch(nil, evs)} // [0]: the whole request
	for i := range evs {
		bodies = append(bodies, event.AppendBatch(nil, evs[i:i+1])) // [1+i]: event i alone
	}
	return bodies
}

// BenchmarkAppend measures the granularity of stream entries: one entry per
// publish request of 100 events (the service's choice) against one entry per
// event, appended one by one through Append (the same Lua script) or as a
// pipeline of 100 plain XADDs (a lower bound: no backpressure check, no
// backlog counter). Each op publishes 100 events; events/s compares them.
//
//	go test ./service/queue -run '^$' -bench Append -benchtime 2s
func BenchmarkAppend(b *testing.B) {
	bodies := benchBatch(benchEvents)
	ctx := context.Background()
	variants := []struct {
		name   string
		append func(q *queue.Queue, rdb *redis.Client) error
	}{
		{"entry-per-request", func(q *queue.Queue, _ *redis.Client) error {
			_, err := q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: benchEvents, Body: bodies[0]})
			return err
		}},
		{"entry-per-event", func(q *queue.Queue, _ *redis.Client) error {
			now := time.Now()
			for i := range benchEvents {
				if _, err := q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: now, Count: 1, Body: bodies[1+i]}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"entry-per-event-pipelined-xadd", func(q *queue.Queue, rdb *redis.Client) error {
			now := time.Now().UnixNano()
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := range benchEvents {
					p.XAdd(ctx, &redis.XAddArgs{Stream: q.Stream(), Values: []any{"t", queue.NewToken(), "r", now, "n", 1, "e", bodies[1+i]}})
				}
				return nil
			})
			return err
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			q, rdb := newQueue(b, 1<<50)
			b.SetBytes(int64(len(bodies[0])))
			ops := 0
			for b.Loop() {
				if ops++; ops%200 == 0 {
					// Keep Redis's memory and AOF small: start a new stream.
					b.StopTimer()
					if err := rdb.Del(ctx, q.Stream()).Err(); err != nil {
						b.Fatal(err)
					}
					if err := q.Setup(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if err := v.append(q, rdb); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(ops*benchEvents)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRoundTrip adds the consumer's side to BenchmarkAppend: append
// 100 events, read them back as one worker and acknowledge them, per
// granularity.
func BenchmarkRoundTrip(b *testing.B) {
	bodies := benchBatch(benchEvents)
	ctx := context.Background()
	for _, perRequest := range []bool{true, false} {
		name := "entry-per-event"
		if perRequest {
			name = "entry-per-request"
		}
		b.Run(name, func(b *testing.B) {
			q, _ := newQueue(b, 1<<50)
			ops := 0
			for b.Loop() {
				ops++
				if perRequest {
					if _, err := q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: benchEvents, Body: bodies[0]}); err != nil {
						b.Fatal(err)
					}
				} else {
					for i := range benchEvents {
						if _, err := q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: 1, Body: bodies[1+i]}); err != nil {
							b.Fatal(err)
						}
					}
				}
				got, err := q.Read(ctx, "bench", 200, -1)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := q.Ack(ctx, got); err != nil || n != len(got) {
					b.Fatalf("ack: %d of %d, %v", n, len(got), err)
				}
			}
			b.ReportMetric(float64(ops*benchEvents)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
