//go:build plantedbugs

package event

// DecodeArraysUnchecked is DecodeRequest with the planted bug
// arrays-unchecked, a negative control (see service/planted): the
// validator does not look at the values directly inside payload arrays. A
// string with \u0000, a lone surrogate or invalid UTF-8, or a number
// PostgreSQL numeric cannot hold, placed directly in an array, is accepted
// (the worker then fails on it); inside an object, even one inside an
// array, it is still refused. Objects and arrays inside arrays are walked
// as usual, so the nesting limit holds.
func DecodeArraysUnchecked(body []byte, lim Limits) ([]Event, error) {
	return decodeRequest(body, lim, arraysUnchecked)
}

// arraysUnchecked is the array element step that skips scalars unseen.
func arraysUnchecked(dc *decoder, i, depth int) int {
	switch dc.d[i] {
	case '{', '[':
		return dc.walk(i, depth)
	}
	return skipValueValid(dc.d, i)
}
