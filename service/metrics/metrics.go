// Package metrics holds the service's Prometheus collectors, on a registry of
// its own so that several service instances can live in one test process.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the service's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	PublishRequests *prometheus.CounterVec // by HTTP status code
	PublishLatency  prometheus.Histogram   // seconds, whole /publish handler
	EventsAccepted  prometheus.Counter     // events in acknowledged requests
	Batches         prometheus.Counter     // batches committed
	BatchSize       prometheus.Histogram   // events per committed batch
	CommitLatency   prometheus.Histogram   // seconds per batch transaction
	PublishToCommit prometheus.Histogram   // seconds from request arrival to commit, per entry
	EventsStored    prometheus.Counter     // first copies inserted
	EventsDropped   prometheus.Counter     // duplicate copies dropped
	Redeliveries    prometheus.Counter     // entries the ledger had already applied
	Claimed         prometheus.Counter     // entries taken over from idle consumers
	DeadLetters     prometheus.Counter     // entries moved to the dead-letter stream
	BatchErrors     *prometheus.CounterVec // by kind: transient, data
	QueueDepth      prometheus.Gauge       // events accepted, not yet applied
	Pending         prometheus.Gauge       // entries delivered, not yet acknowledged
	DeadLettered    prometheus.Gauge       // entries in the dead-letter stream
	// LedgerPruned counts ledger rows the pruner deleted (LEDGER_RETENTION);
	// LedgerPrunePasses its passes, whether they deleted rows or not.
	LedgerPruned      prometheus.Counter
	LedgerPrunePasses prometheus.Counter
}

// New creates and registers the collectors, plus the Go and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	latency := prometheus.ExponentialBucketsRange(0.0001, 10, 24)
	m := &Metrics{
		Registry: r,
		PublishRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicle_publish_requests_total", Help: "Publish requests by HTTP status code.",
		}, []string{"code"}),
		PublishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronicle_publish_duration_seconds", Help: "Time to answer a publish request.", Buckets: latency,
		}),
		EventsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_events_accepted_total", Help: "Events in acknowledged publish requests.",
		}),
		Batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_batches_total", Help: "Batches committed by the workers.",
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronicle_batch_events", Help: "Event copies per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 16),
		}),
		CommitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronicle_batch_commit_seconds", Help: "Duration of one batch transaction.", Buckets: latency,
		}),
		PublishToCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronicle_publish_to_commit_seconds", Help: "From publish request arrival to the commit of its entry.", Buckets: latency,
		}),
		EventsStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_events_stored_total", Help: "First copies stored.",
		}),
		EventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_events_dropped_total", Help: "Duplicate copies dropped.",
		}),
		Redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_redeliveries_total", Help: "Entries delivered again after being applied (recognised by the ledger).",
		}),
		Claimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_claimed_entries_total", Help: "Entries claimed from consumers idle longer than CLAIM_IDLE.",
		}),
		DeadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_dead_letters_total", Help: "Entries this instance moved to the dead-letter stream.",
		}),
		BatchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicle_batch_errors_total", Help: "Failed batch attempts by kind.",
		}, []string{"kind"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicle_queue_depth", Help: "Events accepted and not yet applied.",
		}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicle_pending_entries", Help: "Stream entries delivered to a worker and not yet acknowledged.",
		}),
		DeadLettered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicle_dead_lettered_entries", Help: "Entries in the dead-letter stream.",
		}),
		LedgerPruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_ledger_pruned_rows_total", Help: "Ledger rows deleted by the pruner (LEDGER_RETENTION).",
		}),
		LedgerPrunePasses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicle_ledger_prune_passes_total", Help: "Passes of the ledger pruner.",
		}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.PublishRequests, m.PublishLatency, m.EventsAccepted, m.Batches, m.BatchSize,
		m.CommitLatency, m.PublishToCommit, m.EventsStored, m.EventsDropped, m.Redeliveries,
		m.Claimed, m.DeadLetters, m.BatchErrors, m.QueueDepth, m.Pending, m.DeadLettered,
		m.LedgerPruned, m.LedgerPrunePasses,
	)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
