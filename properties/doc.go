// Package properties holds ChronicleWeaver's property-based tests: rapid
// draws requests (and, for the state machine, faults), a real environment
// (harness/env: PostgreSQL, Redis and the service as local processes)
// answers them, and harness/checker.Check judges the history against what
// was read back. Nothing is mocked.
//
// The properties (one test each):
//
//   - TestRacingDuplicates: copies of one key sent concurrently are stored
//     once and counted exactly (stats and audit).
//   - TestSetSemantics: the stored set is the set of distinct acknowledged
//     keys, each payload is one of its copies, and GET /events pages walk the
//     set once in timestamp order.
//
// Both draw some keys that reuse an event id already used under another
// topic (about one new key in ten, as harness/gen's shared_ids does for the
// fault scenarios): the identity is (topic, event_id).
//   - TestStateMachine: publishes mixed with service, Redis and PostgreSQL
//     crashes keep every guarantee at every drain-and-check.
//   - TestBadInput: invalid requests get their documented status and leave
//     no trace; invalid values placed at any depth of payloads of arbitrary
//     shape, directly inside arrays too, are refused naming their path;
//     valid payloads of arbitrary shape are stored as sent.
//
// TestPlantedBugsAreCaught runs the relevant property against each planted
// bug (service/planted) and requires it to fail; for a bug meant to be
// caught by one generator dimension (dedup-event-id: shared event ids;
// arrays-unchecked: nested payloads) it first requires the property
// without that dimension to pass.
//
// Check counts are bounded by default and longer with CHRONICLE_FULL=1;
// -rapid.checks, -rapid.steps and -rapid.shrinktime (or RAPID_CHECKS, ...)
// override them; -short divides them (rapid's rule) and skips the
// state-machine planted bugs. A failure prints rapid's seed
// (-rapid.seed=N replays it) and the smallest failing run. With
// CHRONICLE_RESULTS=dir the outcomes are written to dir/properties.json
// (harness/results); `chronicle report --md properties --results dir`
// renders dir/properties.md from it (`make properties` does both). The state machine's Redis runs with appendfsync
// always unless CHRONICLE_REDIS_FSYNC says otherwise (see machineFsync).
package properties
