//go:build plantedbugs

package store

// UnboundedTopics is the planted bug stats-topics-unbounded
// (service/planted): Counts and AuditSummary list every topic and worker,
// so /stats and /audit/summary grow with the number of topics.
func UnboundedTopics(o Options) Options {
	o.MaxTopics = 0
	return o
}
