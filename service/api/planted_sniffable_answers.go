//go:build plantedbugs

package api

import "net/http"

// SniffableAnswers is the planted bug sniffable-answers
// (service/planted): answers go out without X-Content-Type-Options:
// nosniff, so a browser may take a JSON answer holding HTML for a page.
func SniffableAnswers(next http.Handler) http.Handler { return next }
