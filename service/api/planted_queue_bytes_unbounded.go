//go:build plantedbugs

package api

// QueueBytesUnbounded is the planted bug queue-bytes-unbounded
// (service/planted): QUEUE_MAX_BYTES is read but not applied, so /publish
// appends however much memory Redis holds.
func QueueBytesUnbounded(o Options) Options {
	o.QueueMaxBytes = 0
	return o
}
