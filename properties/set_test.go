package properties

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// TestSetSemantics: a drawn sequence of publishes over a few topics, with
// drawn duplicates (within and across requests), event ids shared across
// topics (one new key in about ten reuses an id another topic has: the
// identity is (topic, event_id)), batch sizes, timestamp formats and
// disorder, stores exactly the distinct acknowledged keys
// (checker.Check, and exact stats deltas); each stored event is one of the
// copies sent for its key (payload, timestamp and source); and walking GET
// /events page by page (drawn limit) visits each stored event of each topic
// once, in non-increasing timestamp order.
func TestSetSemantics(t *testing.T) {
	t.Parallel()
	e := useSharedEnv(t, "api", env.LocalOptions{Settings: apiSettings})
	st := newRunStats(t)
	defer recordClean(t, propSet, st)
	check(t, setChecks, st, setSemantics(e, true))
}

const propSet = "set semantics"

// sentCopy is one copy of a key as sent: its event and the instant its
// timestamp denotes.
type sentCopy struct {
	ev ev
	ts time.Time
}

// setSemantics is the property; sharedIDs turns on keys that reuse an event
// id under another topic (idSharing).
func setSemantics(e env.Env, sharedIDs bool) func(*rapid.T) {
	return func(t *rapid.T) {
		sp := newSpace("set")
		p := newPublisher(e)
		before, err := settled(p.cl)
		must(t, err, "stats before")

		topics := rapid.IntRange(1, 3).Draw(t, "topics")
		nreq := rapid.IntRange(1, 10).Draw(t, "requests")
		copies := map[history.Key][]sentCopy{}
		sharing := newIDSharing(sharedIDs)
		var keys []history.Key // distinct, in first-sent order
		sent, seq := 0, 0
		for r := range nreq {
			size := rapid.IntRange(0, 20).Draw(t, fmt.Sprintf("req%d size", r))
			evs := make([]ev, 0, size)
			for i := range size {
				var k history.Key
				if len(keys) > 0 && rapid.IntRange(0, 3).Draw(t, "duplicate?") == 0 {
					k = keys[rapid.IntRange(0, len(keys)-1).Draw(t, "duplicate of")]
				} else {
					k = sharing.newKey(t, sp.topic(rapid.IntRange(0, topics-1).Draw(t, "topic")), sp.eventID(len(keys)))
					keys = append(keys, k)
				}
				seq++
				stamp, ts := formatTime(drawTime(t, "ts"), rapid.SampledFrom(zones).Draw(t, "zone"),
					rapid.SampledFrom([]int{0, 3, 6}).Draw(t, "digits"))
				payload, err := json.Marshal(map[string]any{
					"message":   textGen.Draw(t, "message"),
					"timestamp": stamp,
					"seq":       seq,
					"n":         rapid.IntRange(-1_000_000, 1_000_000).Draw(t, "n"),
				})
				must(t, err, "payload")
				x := ev{EventID: k.ID, Topic: k.Topic, Source: fmt.Sprintf("src-%d", i%3), Timestamp: stamp, Payload: payload}
				evs = append(evs, x)
				copies[k] = append(copies[k], sentCopy{ev: x, ts: ts})
			}
			logf(t, stepPrefix+"%d: publish %s", r+1, sp.shortKeys(keysOf(evs), 12))
			status, typ, err := p.publish(0, evs)
			if typ != history.OK {
				t.Fatalf("request %d not acknowledged (no fault was injected): %s: %v", r, outcome(status, typ), err)
			}
			sent += len(evs)
		}
		limit := rapid.IntRange(1, 12).Draw(t, "page limit")
		if n := sharing.shared(); n > 0 {
			logf(t, "%d event ids used under several topics", n)
		}

		rb, err := readBack(e, p.cl, sp, before)
		must(t, err, "read back")
		res := checker.Check(p.rec.Ops(), rb)
		logf(t, "check: %s", describe(res, sp))
		if !res.Valid {
			violated(t, "checker.Check invalid", "%s", strings.Join(res.Violations, "; "))
		}
		for _, k := range keys {
			if rb.Stored[k] != 1 {
				violated(t, "stored set differs from the acknowledged keys", "%s stored %d times", sp.short(k), rb.Stored[k])
			}
		}
		if len(rb.Stored) != len(keys) {
			violated(t, "stored set differs from the acknowledged keys", "%d keys stored, %d distinct keys acknowledged", len(rb.Stored), len(keys))
		}
		d := rb.After.Sub(rb.Before)
		if d.Received != int64(sent) || d.UniqueProcessed != int64(len(keys)) || d.DuplicatedDropped != int64(sent-len(keys)) {
			violated(t, "stats deltas not exact", "received %d unique %d dropped %d, want %d %d %d",
				d.Received, d.UniqueProcessed, d.DuplicatedDropped, sent, len(keys), sent-len(keys))
		}

		// Walk each topic's events page by page.
		for k := range topics {
			topic := sp.topic(k)
			want := 0
			for key := range rb.Stored {
				if key.Topic == topic {
					want++
				}
			}
			visited := map[history.Key]bool{}
			var prev time.Time
			cursor := ""
			for page := 0; ; page++ {
				if page > want/limit+2 {
					violated(t, "GET /events pages do not end", "topic %d: more than %d pages of %d for %d events", k, page, limit, want)
				}
				pg, err := getEvents(p.cl, topic, limit, cursor)
				must(t, err, "GET /events")
				if pg.Count != int64(want) {
					violated(t, "GET /events count wrong", "topic t%d page %d: count %d, %d events stored", k, page, pg.Count, want)
				}
				if len(pg.Events) > limit {
					violated(t, "GET /events page over the limit", "topic t%d page %d: %d events, limit %d", k, page, len(pg.Events), limit)
				}
				for _, se := range pg.Events {
					key := history.Key{Topic: se.Topic, ID: se.EventID}
					if se.Topic != topic {
						violated(t, "GET /events returned another topic", "asked t%d, got %s", k, sp.short(key))
					}
					if visited[key] {
						violated(t, "GET /events visited an event twice", "%s on page %d", sp.short(key), page)
					}
					visited[key] = true
					if !prev.IsZero() && se.Timestamp.After(prev) {
						violated(t, "GET /events not in non-increasing timestamp order", "%s at %s after %s",
							sp.short(key), se.Timestamp.Format(time.RFC3339Nano), prev.Format(time.RFC3339Nano))
					}
					prev = se.Timestamp
					if !oneOfCopies(se, copies[key]) {
						violated(t, "stored event is none of the copies sent", "%s stored %s at %s from %q; sent %d copies",
							sp.short(key), se.Payload, se.Timestamp.Format(time.RFC3339Nano), se.Source, len(copies[key]))
					}
				}
				if pg.NextCursor == nil || *pg.NextCursor == "" {
					break
				}
				cursor = *pg.NextCursor
			}
			if len(visited) != want {
				violated(t, "GET /events pages miss stored events", "topic t%d: visited %d of %d", k, len(visited), want)
			}
		}
	}
}

// oneOfCopies reports whether se is one of the copies sent: same payload
// (as a JSON value), same instant, same source.
func oneOfCopies(se storedEvent, cs []sentCopy) bool {
	for _, c := range cs {
		if sameJSON(se.Payload, c.ev.Payload) && se.Timestamp.Equal(c.ts) && se.Source == c.ev.Source {
			return true
		}
	}
	return false
}
