//go:build plantedbugs

package event

import "math"

// UnboundedErrors is the planted bug unbounded-422 (service/planted): the
// error list of a 422 is no longer capped in bytes (MaxErrors still stops
// validation), so a small request with many errors gets a large answer.
func UnboundedErrors(l Limits) Limits {
	l.MaxErrorBytes = math.MaxInt
	return l
}
