package checker_test

import (
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// attempt is one attempt of a keyed request.
type attempt struct {
	idem   string
	keys   []string
	out    history.Type
	replay bool // the ok answer said Idempotent-Replayed
}

func buildKeyed(as ...attempt) []history.Op {
	r, _ := history.NewRecorder("")
	for i, a := range as {
		ks := make([]history.Key, len(a.keys))
		for j, k := range a.keys {
			ks[j] = key(k)
		}
		inv := r.InvokeKeyed(time.Now(), i, history.FPublish, ks, "", a.idem)
		v := ""
		if a.replay {
			v = history.Replayed
		}
		r.Complete(inv, a.out, inv.Time.Add(time.Millisecond), 200, "", v)
	}
	return r.Ops()
}

func applied(reqs ...[]string) map[string]int {
	m := map[string]int{}
	for _, ks := range reqs {
		hk := make([]history.Key, len(ks))
		for i, k := range ks {
			hk[i] = key(k)
		}
		m[checker.Signature(hk)]++
	}
	return m
}

// With keys the request is the unit and the accounting is exact: an
// unknown attempt retried and acknowledged counts once; a request applied
// twice fails even where the bound (acknowledged + unknown copies) would
// have let it pass.
func TestCheckKeyed(t *testing.T) {
	t.Parallel()
	A, B := []string{"a/1", "a/2"}, []string{"b/1", "a/1"}
	// A: unknown, then retried and acknowledged. B: unknown, never settled.
	ops := buildKeyed(
		attempt{"kA", A, history.Info, false}, attempt{"kA", A, history.Fail, false}, attempt{"kA", A, history.OK, true},
		attempt{"kB", B, history.Info, false},
	)
	cases := []struct {
		name   string
		rb     checker.Readback
		valid  bool
		exact  bool
		wantIn string
	}{
		{"A once, B not applied", checker.Readback{Stored: stored("a/1", "a/2"), After: stats(2, 2, 0), Drained: true,
			Applied: applied(A)}, true, true, ""},
		{"A once, B applied (recovered)", checker.Readback{Stored: stored("a/1", "a/2", "b/1"), After: stats(4, 3, 1), Drained: true,
			Applied: applied(A, B)}, true, true, ""},
		// The retry of A applied a second time: received 4 is within the
		// attempts' bound (2 acknowledged + 4 unknown copies) and within
		// the requests' (2 + 2), and still wrong.
		{"A applied twice", checker.Readback{Stored: stored("a/1", "a/2"), After: stats(4, 2, 2), Drained: true,
			Applied: applied(A, A)}, false, false, "requests: 1 applications more than requests sent"},
		{"received off by the copies of B", checker.Readback{Stored: stored("a/1", "a/2", "b/1"), After: stats(3, 3, 0), Drained: true,
			Applied: applied(A, B)}, false, true, "stats: received grew by 3, but the requests applied hold 4 copies"},
		{"acknowledged A not applied", checker.Readback{Stored: stored("b/1", "a/1"), After: stats(2, 2, 0), Drained: true,
			Applied: applied(B)}, false, false, "requests: 1 acknowledged requests not applied"},
		{"an entry of no request", checker.Readback{Stored: stored("a/1", "a/2"), After: stats(3, 2, 1), Drained: true,
			Applied: applied(A, []string{"a/1"})}, false, false, "requests: 1 applied entries match no request sent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := checker.Check(ops, c.rb)
			if !r.Keyed || r.Retries != 2 || r.Requests.OK != 1 || r.Requests.Info != 1 || r.Requests.Fail != 0 {
				t.Fatalf("keyed %v, retries %d, requests %+v: want keyed, 2 retries, 1 ok, 1 info", r.Keyed, r.Retries, r.Requests)
			}
			if r.FailedAttempts != 1 || r.UnknownAttempts != 2 || r.ReplayedAfterUnknown != 1 {
				t.Errorf("attempts failed %d, unknown %d, replayed after unknown %d: want 1, 2, 1", r.FailedAttempts, r.UnknownAttempts, r.ReplayedAfterUnknown)
			}
			if r.AcknowledgedCopies != 2 || r.UnknownCopies != 2 {
				t.Errorf("copies acknowledged %d, unknown %d: want 2, 2 (per request, not per attempt)", r.AcknowledgedCopies, r.UnknownCopies)
			}
			if r.Valid != c.valid || r.RequestsExact != c.exact {
				t.Fatalf("valid %v, requests exact %v; want %v, %v; violations %v", r.Valid, r.RequestsExact, c.valid, c.exact, r.Violations)
			}
			if c.wantIn != "" && !containsPrefix(r.Violations, c.wantIn) {
				t.Errorf("violations %q lack %q", r.Violations, c.wantIn)
			}
		})
	}
	// Without the applied entries, the bound over requests stays.
	r := checker.Check(ops, checker.Readback{Stored: stored("a/1", "a/2"), After: stats(2, 2, 0), Drained: true})
	if !r.Valid || r.Measured(checker.CheckRequests) {
		t.Errorf("no applied entries: valid %v, requests measured %v: %v", r.Valid, r.Measured(checker.CheckRequests), r.Violations)
	}
	// Without keys, nothing changes: the bound, attempts as requests.
	plain := build(req{keys: A, out: history.Info}, req{keys: A, out: history.OK})
	r = checker.Check(plain, checker.Readback{Stored: stored("a/1", "a/2"), After: stats(4, 2, 2), Drained: true, Applied: applied(A, A)})
	if !r.Valid || r.Keyed || r.RequestsExact {
		t.Errorf("no keys: valid %v keyed %v exact %v: %v", r.Valid, r.Keyed, r.RequestsExact, r.Violations)
	}
}

func containsPrefix(ss []string, p string) bool {
	for _, s := range ss {
		if len(s) >= len(p) && s[:len(p)] == p {
			return true
		}
	}
	return false
}
