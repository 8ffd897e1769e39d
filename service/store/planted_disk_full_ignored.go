//go:build plantedbugs

package store

import (
	"context"
	"time"
)

// DiskFullIgnored is the planted bug disk-full-ignored, a negative control
// (see service/planted): the commit step takes a transaction PostgreSQL
// refused for want of disk space (SQLSTATE 53100 disk_full, "could not
// extend file") for one that went through, as a careless "the rows are
// surely there" would, so the worker acknowledges a batch that was never
// stored. Only a full disk under PostgreSQL exposes it; every other error
// and method is the Store's own.
type DiskFullIgnored struct{ *Store }

// ApplyBatch is Store.ApplyBatch, with a disk_full failure reported as
// every entry applied (none was).
func (s DiskFullIgnored) ApplyBatch(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	res, err := s.Store.ApplyBatch(ctx, worker, entries)
	if IsDiskFull(err) {
		fresh := make([]int, len(entries))
		for i := range entries {
			fresh[i] = i
		}
		return Applied{Fresh: fresh, StoredAt: time.Now()}, nil
	}
	return res, err
}
