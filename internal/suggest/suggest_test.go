package suggest_test

import (
	"slices"
	"testing"

	"github.com/chronicleweaver/chronicleweaver/internal/suggest"
)

func TestClosest(t *testing.T) {
	t.Parallel()
	scenarios := []string{"crash-redis", "crash-service", "cut-postgres", "cut-redis", "hot-keys", "scale-1", "scale-2", "stress-20k"}
	flags := []string{"scenario", "smoke", "backend", "target", "database-url", "token", "binary", "runs", "planted-bug"}
	cases := []struct {
		name       string
		candidates []string
		want       []string
	}{
		{"crash-servce", scenarios, []string{"crash-service"}},
		{"crash", scenarios, []string{"crash-redis", "crash-service"}},
		{"scale", scenarios, []string{"scale-1", "scale-2"}},
		{"HOT-KEYS", scenarios, []string{"hot-keys"}},
		{"scenaro", flags, []string{"scenario"}},
		{"-smok", flags, []string{"smoke"}},
		{"database", flags, []string{"database-url"}},
		{"zzzzzzzz", scenarios, nil},
		{"", scenarios, nil},
	}
	for _, c := range cases {
		got := suggest.Closest(c.name, c.candidates, 3)
		if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("Closest(%q) = %q, want %q", c.name, got, c.want)
		}
	}
	if got := suggest.Closest("s", scenarios, 2); len(got) != 2 {
		t.Errorf("Closest with n=2 returned %d names: %q", len(got), got)
	}
}

func TestHint(t *testing.T) {
	t.Parallel()
	names := []string{"crash-redis", "crash-service", "cut-redis"}
	for _, c := range []struct{ name, want string }{
		{"crash-servce", " (did you mean crash-service?)"},
		{"crash", " (did you mean crash-redis or crash-service?)"},
		{"redis", " (did you mean crash-redis or cut-redis?)"},
		{"c", " (did you mean crash-redis, crash-service or cut-redis?)"},
		{"nothing-like-it", ""},
	} {
		if got := suggest.Hint(c.name, names); got != c.want {
			t.Errorf("Hint(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}
