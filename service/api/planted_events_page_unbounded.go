//go:build plantedbugs

package api

// UnboundedPages is the planted bug events-page-unbounded
// (service/planted): /events pages are bounded by rows only, so a page of
// large events is as large as its rows make it.
func UnboundedPages(o Options) Options {
	o.PageBytes = 0
	return o
}
