package store_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// Several stores migrating one fresh database at once: no error, and every
// migration applied exactly once (by exactly one of them).
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := env.NewDatabase(t)
	const n = 6
	stores := make([]*store.Store, n)
	for i := range stores {
		stores[i] = openStore(t, url, "")
	}
	applied := make([][]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			applied[i], errs[i] = st.Migrate(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	var all []int
	for i := range stores {
		if errs[i] != nil {
			t.Fatalf("store %d: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	slices.Sort(all)
	latest := store.LatestVersion()
	mustf(t, latest >= 1, "no migrations")
	mustf(t, len(all) == latest && all[0] == 1 && all[len(all)-1] == latest && !hasDup(all),
		"versions applied %v, want 1..%d once each", all, latest)
	v, err := stores[0].SchemaVersion(context.Background())
	mustf(t, err == nil && v == latest, "schema version %d (%v), want %d", v, err, latest)
	var rows, distinct int
	err = stores[0].Pool().QueryRow(context.Background(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &distinct)
	mustf(t, err == nil && rows == latest && distinct == latest, "schema_migrations: %d rows, %d versions (%v)", rows, distinct, err)
	// Migrating again does nothing.
	again, err := stores[1].Migrate(context.Background())
	mustf(t, err == nil && len(again) == 0, "second migration applied %v (%v)", again, err)
}

func hasDup(s []int) bool {
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return true
		}
	}
	return false
}

func mustf(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []store.Cursor{
		{TS: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), Topic: "t", EventID: "1"},
		{TS: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Topic: "", EventID: "x"},
		{TS: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), Topic: "é\"\\", EventID: "\u2028</script>"},
	} {
		got, err := store.ParseCursor(c.String())
		if err != nil || got != c {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	b64 := base64.RawURLEncoding.EncodeToString
	for _, bad := range []string{
		"", "!!", b64([]byte("null")), b64([]byte(`{}`)), b64([]byte(`[1,"a"]`)), b64([]byte(`[1,"a","b","c"]`)),
		b64([]byte(`[1.5,"a","b"]`)), b64([]byte(`["1","a","b"]`)), b64([]byte(`[1,2,"b"]`)),
		b64([]byte(`[9223372036854775807,"a","b"]`)), b64([]byte(`[-62135596800000001,"a","b"]`)),
		b64([]byte(`[253402300800000000,"a","b"]`)),
	} {
		if c, err := store.ParseCursor(bad); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("ParseCursor(%q) = %+v, %v; want ErrBadCursor", bad, c, err)
		}
	}
}

// Pagination reaches the extreme timestamps an event may carry, and a
// cursor at either end works.
func TestEventsPagesAcrossTheTimestampRange(t *testing.T) {
	t.Parallel()
	st := newStore(t, store.MethodUnnest)
	ctx := context.Background()
	stamps := []time.Time{
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var evs []event.Event
	for i, ts := range stamps {
		e := mkEv("t", fmt.Sprint(i), "m")
		e.Timestamp = ts
		evs = append(evs, e)
	}
	if _, err := st.ApplyBatch(ctx, "w", []store.Entry{mkEntry("tok", evs...)}); err != nil {
		t.Fatal(err)
	}
	var got []string
	var after *store.Cursor
	for range 10 {
		p, err := st.Events(ctx, store.EventsQuery{Limit: 1, After: after})
		mustf(t, err == nil, "page: %v", err)
		mustf(t, p.Count == 5, "count %d", p.Count)
		for _, e := range p.Events {
			got = append(got, e.EventID)
		}
		if p.Next == nil {
			break
		}
		// The cursor goes through its string form, as a client sends it.
		c, err := store.ParseCursor(p.Next.String())
		mustf(t, err == nil, "cursor %+v: %v", p.Next, err)
		after = &c
	}
	// Ties (2026-01-01) by event_id descending.
	mustf(t, slices.Equal(got, []string{"0", "2", "1", "3", "4"}), "order %v", got)
}
