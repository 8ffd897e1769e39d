//go:build plantedbugs

package app

// memoryLimitIgnored is the planted bug memory-limit-ignored
// (service/planted): MEMORY_LIMIT is read but never handed to the
// runtime, so the heap grows as far as the garbage collector's pacing
// lets it under hostile load.
func memoryLimitIgnored(int64) int64 { return 0 }
