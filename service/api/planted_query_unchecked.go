//go:build plantedbugs

package api

// UncheckedQuery is the planted bug query-unchecked (service/planted): a
// query check that lets everything through, so a NUL or invalid UTF-8 in a
// parameter reaches PostgreSQL and answers 503.
func UncheckedQuery(string) error { return nil }
