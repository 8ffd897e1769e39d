//go:build plantedbugs

package event

// NumbersPrintLarge is the planted bug numbers-print-large
// (service/planted): payload numbers are accepted up to what PostgreSQL
// numeric stores (131,072 digits before the point, 16,383 after), as before
// issue 16, so 1e131071 is stored and printed in full on every read.
func NumbersPrintLarge(l Limits) Limits {
	l.MaxNumberIntDigits, l.MaxNumberFracDigits = pgMaxDWeight+1, pgMaxDScale
	return l
}
