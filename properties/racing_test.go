package properties

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// TestRacingDuplicates: N (2..64) copies of one key, sent at once as a
// drawn mix of single-event requests and batches (a batch may hold several
// copies and other, distinct keys, about one in ten of which reuses the
// event id of the raced key or of another under a topic of its own), are stored once: one row, received
// grows by every copy sent, duplicated_dropped by N-1, and the key has one
// PROCESSED and N-1 DROPPED audit entries. checker.Check must be valid.
func TestRacingDuplicates(t *testing.T) {
	t.Parallel()
	e := useSharedEnv(t, "api", env.LocalOptions{Settings: apiSettings})
	st := newRunStats(t)
	defer recordClean(t, propRacing, st)
	check(t, racingChecks, st, racingDuplicates(e, true))
}

const propRacing = "racing duplicates"

// raceRequest is one request of a race: copies of the raced key and
// others distinct keys, in a drawn order.
type raceRequest struct {
	evs    []ev
	copies int
	others int
}

// racingDuplicates is the property; sharedIDs turns on other keys that
// reuse an event id under another topic (idSharing), the raced key's
// among them.
func racingDuplicates(e env.Env, sharedIDs bool) func(*rapid.T) {
	return func(t *rapid.T) {
		sp := newSpace("race")
		p := newPublisher(e)
		before, err := settled(p.cl)
		must(t, err, "stats before")

		n := rapid.IntRange(2, 64).Draw(t, "copies")
		raced := sp.key(0, 0)
		sharing := newIDSharing(sharedIDs)
		sharing.add(raced)
		var reqs []raceRequest
		seq, nextOther := 0, 1
		for left := n; left > 0; {
			i := len(reqs)
			var r raceRequest
			if rapid.Bool().Draw(t, fmt.Sprintf("req%d batch", i)) {
				r.copies = rapid.IntRange(1, min(left, maxBatch-10)).Draw(t, fmt.Sprintf("req%d copies", i))
				r.others = rapid.IntRange(0, 10).Draw(t, fmt.Sprintf("req%d others", i))
			} else {
				r.copies = 1
			}
			left -= r.copies
			for range r.copies {
				seq++
				r.evs = append(r.evs, newEvent(raced, seq, drawTime(t, "ts"), "copy"))
			}
			for range r.others {
				seq++
				k := sharing.newKey(t, sp.topic(1+nextOther%3), sp.eventID(nextOther))
				nextOther++
				r.evs = append(r.evs, newEvent(k, seq, drawTime(t, "ts"), "other"))
			}
			if len(r.evs) > 1 {
				r.evs = rapid.Permutation(r.evs).Draw(t, fmt.Sprintf("req%d order", i))
			}
			reqs = append(reqs, r)
		}
		others := nextOther - 1
		logf(t, racePrefix+"%s x %d copies in %d concurrent requests, %d other keys, %d event ids under several topics",
			sp.short(raced), n, len(reqs), others, sharing.shared())
		for i, r := range reqs {
			logf(t, stepPrefix+"%d: request of %s", i+1, r.String())
		}

		// Send every request at once.
		start := make(chan struct{})
		var wg sync.WaitGroup
		outcomes := make([]string, len(reqs))
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status, typ, _ := p.publish(i, r.evs)
				if typ != history.OK {
					outcomes[i] = fmt.Sprintf("request %d: %s", i, outcome(status, typ))
				}
			}()
		}
		close(start)
		wg.Wait()
		if bad := nonEmpty(outcomes); len(bad) > 0 {
			t.Fatalf("requests not acknowledged (no fault was injected): %s", strings.Join(bad, "; "))
		}

		rb, err := readBack(e, p.cl, sp, before)
		must(t, err, "read back")
		res := checker.Check(p.rec.Ops(), rb)
		logf(t, "check: %s", describe(res, sp))
		if !res.Valid {
			violated(t, "checker.Check invalid", "%s", strings.Join(res.Violations, "; "))
		}
		if c := rb.Stored[raced]; c != 1 {
			violated(t, "raced key not stored exactly once", "%s stored %d times", sp.short(raced), c)
		}
		d := rb.After.Sub(rb.Before)
		want := checker.Stats{Received: int64(n + others), UniqueProcessed: int64(1 + others), DuplicatedDropped: int64(n - 1)}
		if d.Received != want.Received || d.UniqueProcessed != want.UniqueProcessed || d.DuplicatedDropped != want.DuplicatedDropped {
			violated(t, "stats deltas not exact", "received %d unique %d dropped %d, want %d %d %d",
				d.Received, d.UniqueProcessed, d.DuplicatedDropped, want.Received, want.UniqueProcessed, want.DuplicatedDropped)
		}
		for _, a := range []struct {
			action string
			want   int64
		}{{"PROCESSED", 1}, {"DROPPED", int64(n - 1)}, {"RECEIVED", int64(n)}, {"QUEUED", int64(n)}} {
			got, err := auditCount(p.cl, raced, a.action)
			must(t, err, "audit")
			if got != a.want {
				violated(t, "audit of the raced key not exact", "%d %s entries for %s, want %d", got, a.action, sp.short(raced), a.want)
			}
		}
	}
}

// racePrefix starts the log line of a race's plan.
const racePrefix = "race "

func (r raceRequest) String() string {
	s := "1 copy"
	if r.copies > 1 {
		s = fmt.Sprintf("%d copies", r.copies)
	}
	if r.others > 0 {
		s += fmt.Sprintf(" + %d other keys", r.others)
	}
	return s
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
