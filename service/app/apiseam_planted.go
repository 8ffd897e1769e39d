//go:build plantedbugs

package app

import (
	"net"

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
	case planted.ReadsUnlimited:
		o = api.ReadsUnlimited(o)
	case planted.SniffableAnswers:
		o.Headers = api.SniffableAnswers
	case planted.QueueBytesUnbounded:
		o = api.QueueBytesUnbounded(o)
	}
	return o
}

// memorySeam returns MEMORY_LIMIT, unless the planted bug
// memory-limit-ignored sets none.
func (m *Main) memorySeam(limit int64) int64 {
	if m.Config.PlantedBug == planted.MemoryLimitIgnored {
		return memoryLimitIgnored(limit)
	}
	return limit
}

// listenerSeam returns the listener bounded by MAX_CONNECTIONS, unless the
// planted bug connections-unbounded serves every connection.
func (m *Main) listenerSeam(limited, raw net.Listener) net.Listener {
	if m.Config.PlantedBug == planted.ConnectionsUnbounded {
		return connectionsUnbounded(limited, raw)
	}
	return limited
}
