// Package suggest finds the valid names closest to a mistyped one, for
// error messages that answer "did you mean ...?" (scenario names, command
// line flags and commands).
package suggest

import (
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Closest returns the candidates nearest to name, best first: those that
// contain it or that it contains (ignoring case), then those within a small
// edit distance (a third of the longer name, at least 2). At most n are
// returned; none when nothing is near.
func Closest(name string, candidates []string, n int) []string {
	type scored struct {
		name  string
		score int
	}
	low := strings.ToLower(strings.TrimLeft(name, "-"))
	var near []scored
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := levenshtein.ComputeDistance(low, lc)
		limit := max(2, max(len(low), len(lc))/3)
		switch {
		case low == "":
		case strings.Contains(lc, low) || strings.Contains(low, lc):
			near = append(near, scored{c, min(d, 1)})
		case d <= limit:
			near = append(near, scored{c, d})
		}
	}
	slices.SortStableFunc(near, func(a, b scored) int { return a.score - b.score })
	out := make([]string, 0, min(len(near), n))
	for _, s := range near {
		if len(out) == n {
			break
		}
		out = append(out, s.name)
	}
	return out
}

// Hint is ` (did you mean A or B?)` for the closest candidates (see
// Closest, at most three), or "" when none is near.
func Hint(name string, candidates []string) string {
	near := Closest(name, candidates, 3)
	switch len(near) {
	case 0:
		return ""
	case 1:
		return " (did you mean " + near[0] + "?)"
	}
	return " (did you mean " + strings.Join(near[:len(near)-1], ", ") + " or " + near[len(near)-1] + "?)"
}
