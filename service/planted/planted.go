// Package planted holds the negative controls: deliberate bugs that a
// careless design or refactor would make, switched on one at a time to show
// that the harness catches them. They exist only in binaries built with the
// "plantedbugs" build tag; a normal build refuses to start when one is asked
// for, so a misconfigured control can never pass silently.
//
// Select one with CHRONICLE_PLANTED_BUG=<name>. This package is only the
// catalogue and the refusal: each bug is a file planted_<bug>.go behind the
// tag, in the package that owns the seam it plugs into, and
// service/app/workerseams_planted.go hands the workers the bug's queue or
// store in place of the production one:
//
//	ack-before-commit   worker.AckBeforeCommit   commit step acknowledges first
//	pop-and-forget      queue.PopAndForget       read step deletes what it reads
//	stats-outside-tx    store.StatsOutsideTx,    counters step left out of the
//	                    worker.CountersAfterAck  transaction, run after the ack
//	select-then-insert  store.SelectThenInsert   dedup statement, no unique key
//	no-ledger           store.NoLedger           ledger step remembers nothing
//	redis-no-aof        (the harness)            Redis started without AOF
//	publish-ok-on-timeout  queue.OKOnTimeout     publish path's append: a
//	                                             timeout taken for success
//	ledger-by-entry-id  store.LedgerByEntryID    ledger step keyed on the
//	                                             stream entry ID, not the token
//	ack-on-drain-cut    worker.AckOnDrainCut     commit step acknowledges what
//	                                             a cut-short drain abandons
//	dedup-event-id      store.DedupEventID       dedup statement keyed on
//	                                             event_id alone, not (topic,
//	                                             event_id)
//	arrays-unchecked    event.DecodeArraysUnchecked  the validator skips the
//	                                             values directly inside arrays
//	idempotency-forgotten  queue.IdempotencyForgotten  publish path's append:
//	                                             the key record ignored
//	queued-at-millis    store.QueuedAtMillis     apply step keeps the queue
//	                                             time to the millisecond
//	unbounded-422       event.UnboundedErrors    422 error list not capped in bytes
//	numbers-print-large event.NumbersPrintLarge  payload numbers up to PostgreSQL's
//	                                             limits (1e131071 accepted)
//	query-unchecked     api.UncheckedQuery       query parameters reach
//	                                             PostgreSQL unchecked (NUL -> 503)
//	publish-any-content-type  api.AnyContentType /publish takes any Content-Type
//	events-page-unbounded     api.UnboundedPages /events pages bounded by rows only
//	stats-topics-unbounded    store.UnboundedTopics  /stats lists every topic
//	memory-limit-ignored      app.memoryLimitIgnored MEMORY_LIMIT not set
//	connections-unbounded     app.connectionsUnbounded  MAX_CONNECTIONS not applied
//	reads-unlimited           api.ReadsUnlimited     READ_CONCURRENCY not applied
//	queue-bytes-unbounded     api.QueueBytesUnbounded  QUEUE_MAX_BYTES not applied
//	sniffable-answers         api.SniffableAnswers   no X-Content-Type-Options: nosniff
//	ledger-pruned-too-early   queue.LedgerPrunedTooEarly  the ledger pruner's
//	                                             horizon ignores pending entries
//	deliveries-uncounted      queue.DeliveriesUncounted  the workers' pending
//	                                             list without delivery counts
//	publish-ok-on-disk-error  queue.OKOnDiskError    publish path's append: Redis's
//	                                                 MISCONF (AOF not writable)
//	                                                 taken for success
//	disk-full-ignored         store.DiskFullIgnored  commit step: a transaction
//	                                                 refused with disk_full taken
//	                                                 for committed
//
// The eleven from unbounded-422 to sniffable-answers loosen a guard
// against hostile input (issue 16):
// service/app/apiseam_planted.go hands the HTTP edge (or the store, the
// runtime, the listener) the bug's options.
//
// Everything else in a planted run is the production code; the store's
// bugs replace one step of the multi-statement apply (the copy method's).
// publish-ok-on-timeout plugs into the HTTP edge's queue instead
// (service/app/publishseam_planted.go), and so does idempotency-forgotten;
// arrays-unchecked plugs into its request decoder
// (service/app/decodeseam_planted.go).
package planted

import (
	"fmt"
	"sort"
	"strings"
)

// EnvVar selects the planted bug.
const EnvVar = "CHRONICLE_PLANTED_BUG"

// The bugs.
const (
	// AckBeforeCommit acknowledges (XACK) a batch before its transaction
	// commits: a crash in between loses the batch.
	AckBeforeCommit = "ack-before-commit"
	// PopAndForget consumes like BRPOP: entries leave the stream when read,
	// with no pending list, so a crash loses what was read.
	PopAndForget = "pop-and-forget"
	// StatsOutsideTx updates the counters in a second transaction after the
	// acknowledgement: a crash in between leaves the stats wrong.
	StatsOutsideTx = "stats-outside-tx"
	// SelectThenInsert drops the unique constraint and deduplicates by
	// SELECT then INSERT: racing copies are stored twice.
	SelectThenInsert = "select-then-insert"
	// NoLedger skips the ledger of applied entries: a redelivered entry is
	// applied again and its events counted twice.
	NoLedger = "no-ledger"
	// RedisNoAOF runs Redis without its append-only file (set up by the
	// harness, not the service): a Redis restart loses the queue.
	RedisNoAOF = "redis-no-aof"
	// PublishOKOnTimeout answers 200 to a publish whose append ran out of
	// PUBLISH_TIMEOUT: an entry still waiting for a silent Redis is
	// acknowledged and never appended.
	PublishOKOnTimeout = "publish-ok-on-timeout"
	// LedgerByEntryID keys the ledger on the stream entry ID: a second copy
	// of one append (a command retried by the Redis client after its first
	// attempt took effect) is applied twice.
	LedgerByEntryID = "ledger-by-entry-id"
	// AckOnDrainCut acknowledges the batch a worker could not apply when
	// SHUTDOWN_TIMEOUT cuts the drain short: the batch is lost.
	AckOnDrainCut = "ack-on-drain-cut"
	// DedupEventID deduplicates on event_id alone: an event whose id is
	// stored under another topic is dropped as its duplicate.
	DedupEventID = "dedup-event-id"
	// ArraysUnchecked validates payloads without looking at the values
	// directly inside arrays: a string or number PostgreSQL cannot store,
	// placed there, is acknowledged and then fails in the worker.
	ArraysUnchecked = "arrays-unchecked"

	// IdempotencyForgotten ignores a request's Idempotency-Key: a request
	// retried after its answer was lost is applied and counted twice.
	IdempotencyForgotten = "idempotency-forgotten"
	// QueuedAtMillis stores the queue time to the millisecond and the
	// receive time to the microsecond: /audit lists QUEUED below RECEIVED.
	QueuedAtMillis = "queued-at-millis"
	// Unbounded422 lists every validation error however many bytes they
	// take: a small request gets an answer many times its size.
	Unbounded422 = "unbounded-422"
	// NumbersPrintLarge accepts payload numbers up to PostgreSQL's numeric
	// limits: 1e131071 is stored and printed with 131,072 digits per read.
	NumbersPrintLarge = "numbers-print-large"
	// QueryUnchecked sends query parameters to PostgreSQL unchecked: a NUL
	// or invalid UTF-8 answers 503 (an outage) instead of 422.
	QueryUnchecked = "query-unchecked"
	// PublishAnyContentType accepts /publish with any Content-Type (or
	// none), which a browser can send cross-site without a preflight.
	PublishAnyContentType = "publish-any-content-type"
	// EventsPageUnbounded bounds /events pages by rows only, not bytes.
	EventsPageUnbounded = "events-page-unbounded"
	// StatsTopicsUnbounded lists every topic in /stats and /audit/summary
	// (STATS_MAX_TOPICS ignored): their size grows with the topics.
	StatsTopicsUnbounded = "stats-topics-unbounded"

	// MemoryLimitIgnored never sets the runtime's memory limit
	// (MEMORY_LIMIT read, not applied).
	MemoryLimitIgnored = "memory-limit-ignored"
	// ConnectionsUnbounded serves every connection (MAX_CONNECTIONS read,
	// not applied): each held connection costs a goroutine and buffers.
	ConnectionsUnbounded = "connections-unbounded"
	// ReadsUnlimited serves every read of data at once (READ_CONCURRENCY
	// read, not applied).
	ReadsUnlimited = "reads-unlimited"
	// QueueBytesUnbounded appends whatever Redis's memory (QUEUE_MAX_BYTES
	// read, not applied).
	QueueBytesUnbounded = "queue-bytes-unbounded"
	// SniffableAnswers leaves out X-Content-Type-Options: nosniff.
	SniffableAnswers = "sniffable-answers"
	// LedgerPrunedTooEarly prunes the ledger by LEDGER_RETENTION alone,
	// ignoring the entries still pending: an entry committed and not yet
	// acknowledged when its consumer died loses its ledger row, and its
	// redelivery is applied and counted again (issue 15).
	LedgerPrunedTooEarly = "ledger-pruned-too-early"
	// DeliveriesUncounted reads the pending list without Redis's delivery
	// counter: an entry whose processing kills the process (a crash is
	// never counted toward MAX_ATTEMPTS) is redelivered forever, blocking
	// its consumer (issue 15).
	DeliveriesUncounted = "deliveries-uncounted"
	// PublishOKOnDiskError answers 200 to a publish Redis refused because
	// it cannot write its AOF (MISCONF, a full disk): acknowledged, never
	// appended.
	PublishOKOnDiskError = "publish-ok-on-disk-error"
	// DiskFullIgnored takes a batch transaction PostgreSQL refused for want
	// of disk space for committed: the batch is acknowledged and lost.
	DiskFullIgnored = "disk-full-ignored"
)

// Descriptions says what each bug is, for reports.
var Descriptions = map[string]string{
	AckBeforeCommit:    "XACK before COMMIT",
	PopAndForget:       "pop-and-forget consumption (like BRPOP, no pending list)",
	StatsOutsideTx:     "stats updated outside the insert transaction",
	SelectThenInsert:   "dedup by SELECT-then-INSERT without the unique constraint",
	NoLedger:           "no ledger of applied entries (redelivery double-counts)",
	RedisNoAOF:         "Redis without AOF",
	PublishOKOnTimeout: "publish answers 200 when its append timed out",
	LedgerByEntryID:    "ledger keyed on the stream entry ID, not the entry's token",
	AckOnDrainCut:      "a drain cut short acknowledges the batch it could not apply",
	DedupEventID:       "dedup on event_id alone, not (topic, event_id)",
	ArraysUnchecked:    "payload validation skips the values directly inside arrays",

	IdempotencyForgotten: "the Idempotency-Key of a publish is ignored (a retried request is applied twice)",
	QueuedAtMillis:       "the queue time stored to the millisecond, the receive time to the microsecond",

	Unbounded422:          "422 error list not capped in bytes",
	NumbersPrintLarge:     "payload numbers accepted up to PostgreSQL's limits (printed with up to 131,072 digits)",
	QueryUnchecked:        "query parameters reach PostgreSQL unchecked (NUL, invalid UTF-8 -> 503)",
	PublishAnyContentType: "/publish accepts any Content-Type, or none",
	EventsPageUnbounded:   "/events pages bounded by rows only, not bytes",
	StatsTopicsUnbounded:  "/stats and /audit/summary list every topic (STATS_MAX_TOPICS ignored)",
	MemoryLimitIgnored:    "MEMORY_LIMIT not handed to the runtime (no soft memory limit)",
	ConnectionsUnbounded:  "MAX_CONNECTIONS not applied (every connection served)",
	ReadsUnlimited:        "READ_CONCURRENCY not applied (every read served at once)",
	QueueBytesUnbounded:   "QUEUE_MAX_BYTES not applied (publishes appended whatever Redis holds)",
	SniffableAnswers:      "answers without X-Content-Type-Options: nosniff",

	LedgerPrunedTooEarly: "the ledger pruner ignores the oldest pending entry (a redelivery after a prune is applied again)",
	DeliveriesUncounted:  "delivery counts ignored (an entry that crashes the process is redelivered forever)",
	PublishOKOnDiskError: "publish answers 200 when Redis refused the append because its AOF cannot be written (MISCONF)",
	DiskFullIgnored:      "a batch transaction refused with disk_full is taken for committed (and acknowledged)",
}

// Names lists the bugs, sorted.
func Names() []string {
	var out []string
	for n := range Descriptions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Check validates a selection ("" for none). It fails when a bug is asked
// for in a build without the plantedbugs tag, or when the name is unknown.
func Check(name string) error {
	if name == "" {
		return nil
	}
	if !Enabled {
		return fmt.Errorf("config: %s=%q: this binary was built without planted bugs (go build -tags plantedbugs)", EnvVar, name)
	}
	if _, ok := Descriptions[name]; !ok {
		return fmt.Errorf("config: %s=%q: unknown; one of %s", EnvVar, name, strings.Join(Names(), ", "))
	}
	return nil
}
