//go:build plantedbugs

package api

// ReadsUnlimited is the planted bug reads-unlimited (service/planted):
// READ_CONCURRENCY is read but not applied, so any number of reads of
// data run at once against PostgreSQL.
func ReadsUnlimited(o Options) Options {
	o.ReadConcurrency = 0
	return o
}
