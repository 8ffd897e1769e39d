//go:build plantedbugs

package app

import (
	"github.com/chronicleweaver/chronicleweaver/service/api"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// storeSeam returns the store's options as configured, unless the planted
// bug stats-topics-unbounded lists every topic.
func (m *Main) storeSeam(o store.Options) store.Options {
	if m.Config.PlantedBug == planted.StatsTopicsUnbounded {
		return store.UnboundedTopics(o)
	}
	return o
}

// apiSeam returns the HTTP edge's options as configured, unless the planted
// bug selected by CHRONICLE_PLANTED_BUG loosens one of the edge's guards
// against hostile input (a negative control, see service/planted).
func (m *Main) apiSeam(o api.Options) api.Options {
	lim := o.Limits
	if lim == (event.Limits{}) {
		lim = event.DefaultLimits()
	}
	switch m.Config.PlantedBug {
	case planted.Unbounded422:
		o.Limits = event.UnboundedErrors(lim)
	case planted.NumbersPrintLarge:
		o.Limits = event.NumbersPrintLarge(lim)
	case planted.QueryUnchecked:
		o.CheckQuery = api.UncheckedQuery
	case planted.PublishAnyContentType:
		o.ContentTypeOK = api.AnyContentType
	case planted.EventsPageUnbounded:
		o = api.UnboundedPages(o)
	}
	return o
}
