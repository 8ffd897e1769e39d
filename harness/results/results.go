// Package results is the model of what the harness measured: the records
// written to results/*.json (bench, verify, properties, repo), how they are
// read back, and the measures derived from a history (percentiles, time
// series, latency distributions, the performance of a load run).
//
// It renders nothing and decides no verdict: the checker decides, this
// package records, and harness/report turns the records into Markdown and
// plots. As in vegeta (lib/results.go, lib/metrics.go, lib/reporters.go),
// raw results are recorded first, aggregated here, and rendered elsewhere,
// so the packages that produce results (scenario, nemesis, verify, the
// property tests) import this model and never the renderer.
package results

import (
	"slices"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
)

// Modes of a scenario run (Scenario.Mode).
const (
	Full  = "full"  // the scenario as written
	Smoke = "smoke" // its short smoke settings (`make verify`)
)

// Header says where and how results were produced.
type Header struct {
	Commit    string            `json:"commit"` // git describe --always, -dirty outside results/
	Date      time.Time         `json:"date"`
	Command   string            `json:"command"` // e.g. "make bench"
	Machine   Machine           `json:"machine"`
	Go        string            `json:"go"`
	Postgres  string            `json:"postgres,omitempty"`
	Redis     string            `json:"redis,omitempty"`
	Backend   string            `json:"backend"` // local, docker, external
	Settings  map[string]string `json:"settings,omitempty"`
	DurableDB bool              `json:"durable_db"`
}

// Machine describes the host.
type Machine struct {
	CPUs     int    `json:"cpus"` // nproc
	CPUModel string `json:"cpu_model"`
	MemoryMB int64  `json:"memory_mb"`
	OS       string `json:"os"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Perf is what a load run measured.
type Perf struct {
	Seconds        float64     `json:"seconds"`          // first request sent to last response
	Requests       int64       `json:"requests"`         // requests completed
	RequestsPerSec float64     `json:"requests_per_sec"` // completed requests / Seconds
	EventsAcked    int64       `json:"events_acked"`     // event copies in 2xx answers
	EventsPerSec   float64     `json:"events_per_sec"`   // acknowledged copies / Seconds
	RowsStored     int64       `json:"rows_stored"`      // distinct keys stored by the run
	RowsPerSec     float64     `json:"rows_per_sec"`     // RowsStored / (first request to last commit)
	ErrorRate      float64     `json:"error_rate"`       // non-2xx or failed requests / requests
	HTTP           Percentiles `json:"http_latency"`     // request latency
	Commit         Percentiles `json:"commit_latency"`   // publish-to-commit, from the database
	// FirstToLastCommit is from the first request sent to the last row
	// committed (stress-20k's figure).
	FirstToLastCommit float64 `json:"first_to_last_commit_seconds"`
	CPUSeconds        float64 `json:"service_cpu_seconds"`
	PeakRSSMiB        float64 `json:"service_peak_rss_mib"`
	// UsageNotMeasured says why CPUSeconds and PeakRSSMiB are not a
	// measurement ("" : they are): an external target, a node whose usage
	// could not be read.
	UsageNotMeasured string `json:"usage_not_measured,omitempty"`
	// CommitNotMeasured says why Commit is not a measurement ("" : it is,
	// or there were no rows).
	CommitNotMeasured string `json:"commit_not_measured,omitempty"`
	// CommitFrom is where Commit starts: "" the subject's receive time
	// (received_at), CommitFromSend the request's send (a subject that does
	// not record when it received an event).
	CommitFrom string `json:"commit_from,omitempty"`
}

// CommitFromSend marks a commit latency measured from the request's send.
const CommitFromSend = "send"

// Distribution is an empirical latency distribution, thinned to at most a
// few thousand points.
type Distribution struct {
	Percentiles
	// Points are (latency, share of requests at or below it), by latency.
	Points []Quantile `json:"points"`
}

// Quantile is one point of a cumulative distribution.
type Quantile struct {
	MS    float64 `json:"ms"`
	Share float64 `json:"share"` // fraction of the samples <= MS, in (0, 1]
}

// Step is one rate of a rate search.
type Step struct {
	Rate          float64     `json:"rate"`           // requests/s asked
	Achieved      float64     `json:"achieved"`       // requests/s completed
	EventsPerSec  float64     `json:"events_per_sec"` // acknowledged copies/s
	HTTP          Percentiles `json:"http_latency"`
	BacklogGrowth int64       `json:"backlog_growth"` // queue_depth at step end - at step start
	ErrorRate     float64     `json:"error_rate"`
	// SendLagMax is the longest a request left after its scheduled time
	// (ms): the load generator's own delay, counted in the latencies.
	SendLagMax float64 `json:"send_lag_max_ms"`
	// SendLagP99 is the 99th percentile of the requests' send lag (ms).
	SendLagP99 float64 `json:"send_lag_p99_ms"`
	// HTTPFromSendP99 is the 99th percentile of the request latency from
	// when each request actually left, without its send lag (ms): the
	// target's own share of HTTP.P99.
	HTTPFromSendP99 float64 `json:"http_p99_from_send_ms"`
	// GeneratorCPUSeconds is the CPU the load generator's process (the
	// harness) used during the step, and GeneratorCPUPerRequestUS the same
	// per request sent, in microseconds.
	GeneratorCPUSeconds      float64 `json:"generator_cpu_seconds"`
	GeneratorCPUPerRequestUS float64 `json:"generator_cpu_us_per_request"`
	// ServiceCPUPerRequestUS is the service processes' CPU during the step
	// per request sent, in microseconds (0: not measured).
	ServiceCPUPerRequestUS float64 `json:"service_cpu_us_per_request,omitempty"`
	Pass                   bool    `json:"pass"`
	// GeneratorLimited marks a step that did not pass because the load
	// generator, not the target, missed the schedule: measured from when
	// each request actually left, the target held the bound, with no
	// error and no backlog, while the generator sent late or too few
	// requests. It is not counted as the target's failure (the search
	// stops there: a higher rate would measure the generator).
	GeneratorLimited bool `json:"generator_limited,omitempty"`
}

// Ceiling names (Ceiling.Name).
const (
	// CeilingHTTP: the same generator and steps against a null handler
	// (200 without work) inside the harness.
	CeilingHTTP = "http"
	// CeilingAppend: the service's append path alone (queue.Append on the
	// run's Redis, called from the harness, no HTTP, no workers).
	CeilingAppend = "append"
)

// Ceiling is the highest rate something simpler than the service holds
// under the search's bound, measured in the same run as the search
// (search.ceilings): the steps from the search's best rate up.
type Ceiling struct {
	Name  string `json:"name"` // CeilingHTTP or CeilingAppend
	Steps []Step `json:"steps,omitempty"`
	// BestRate is the highest passing rate (0: none passed); when every
	// step passed, the ceiling is at least BestRate.
	BestRate    float64 `json:"best_rate"`
	NotMeasured string  `json:"not_measured,omitempty"`
	Error       string  `json:"error,omitempty"`
}

// AtLeast reports whether every step passed: the ceiling lies above the
// steps tried.
func (c Ceiling) AtLeast() bool { return len(c.Steps) > 0 && c.Steps[len(c.Steps)-1].Pass }

// Baseline is the same events inserted straight into PostgreSQL.
type Baseline struct {
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// Ratio is service events/s over baseline events/s (same run).
	Ratio float64 `json:"ratio"`
}

// Fault is one injected fault and how the system recovered.
type Fault struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// During names the fault that framed this one ("pause postgres"):
	// injected before it, healed while it held.
	During string    `json:"during,omitempty"`
	At     time.Time `json:"at"`
	// Held is how long the fault lasted before the heal.
	Held float64 `json:"held_seconds"`
	// ToReady is from the heal to every service answering /ready 200.
	ToReady float64 `json:"to_ready_seconds"`
	// ToDrained is from the heal until the backlog is back to its level
	// before the fault (the load goes on meanwhile).
	ToDrained float64 `json:"to_drained_seconds"`
	Error     string  `json:"error,omitempty"`
}

// Effect is one effect a scenario's faults had to provoke (its expect:)
// and what the run showed of it.
type Effect struct {
	Name string `json:"name"` // as the scenario file spells it, e.g. "drain_cut"
	What string `json:"what"` // what it is and where it is seen
	// Count is how often it was seen (requests, keys or log lines, as What
	// says); Shown is Count >= 1 and the measure could be made.
	Count int64 `json:"count"`
	Shown bool  `json:"shown"`
	// NotMeasured says why the effect could not be looked for (then Shown
	// is false: not measured is not passed).
	NotMeasured string `json:"not_measured,omitempty"`
	// Informative: recorded, not required. An effect seen inside our
	// service (its log, its metrics) cannot be looked for in another
	// implementation of the contract (a foreign subject of `make peers`);
	// its run is judged on the effects seen from outside.
	Informative bool `json:"informative,omitempty"`
}

// Point is one bucket of a time series.
type Point struct {
	T            float64 `json:"t"` // seconds since the run started
	Sent         float64 `json:"sent_per_sec"`
	EventsPerSec float64 `json:"events_acked_per_sec"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
	Errors       float64 `json:"errors_per_sec"`
	// Completed counts the completions in the bucket whose latencies give
	// P50 and P99 (0: no completion, P50 and P99 are not data).
	Completed int `json:"completed"`
}

// Scenario is the result of one scenario run.
type Scenario struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Mode        string `json:"mode"` // Smoke or Full
	Description string `json:"description"`
	RunDir      string `json:"run_dir"`
	// Config is the scenario as run (after smoke overrides), for the record.
	Config any `json:"config"`

	Check    checker.Result `json:"check"`
	Perf     *Perf          `json:"perf,omitempty"`
	Steps    []Step         `json:"steps,omitempty"`
	BestRate float64        `json:"best_rate,omitempty"` // highest passing request rate of a search
	// SearchBoundMS is the search's p99 bound in ms (0: not a search, or
	// not recorded); drawn as a line on the search plot.
	SearchBoundMS float64   `json:"search_bound_p99_ms,omitempty"`
	Baseline      *Baseline `json:"baseline,omitempty"`
	// Attack is what a hostile client did beside the load (scenarios with
	// an attack: section), and the load's throughput without and with it.
	Attack *Attack `json:"attack,omitempty"`
	// Ceilings are what simpler paths hold in the same run (search.ceilings).
	Ceilings []Ceiling `json:"ceilings,omitempty"`
	// Published are the original design's figures for the same shape.
	Published map[string]float64 `json:"published,omitempty"`

	Faults     []Fault `json:"faults,omitempty"`
	MaxToReady float64 `json:"max_to_ready_seconds"`
	// Effects are what the faults had to provoke, as measured.
	Effects   []Effect `json:"effects,omitempty"`
	DrainTime float64  `json:"drain_seconds"` // end of load to queue drained

	Series []Point `json:"series,omitempty"`
	// Soak is what the sampler read during the run (chronicle soak only).
	Soak *SoakSamples `json:"soak,omitempty"`
	// Latencies are raw request latencies in ms for distribution plots
	// (kept only where a plot needs them; not written to JSON).
	Latencies []float64 `json:"-"`
	// Distribution is Latencies summarised for the distribution plot:
	// WriteBench fills it from Latencies, so that rendering from the JSON
	// draws the same plot.
	Distribution *Distribution `json:"latency_distribution,omitempty"`

	// Environment is the system the scenario ran against.
	Environment Environment `json:"environment"`
	// Subject is the subject under test (subjects/NAME.yaml; "" : ours,
	// before subjects were data).
	Subject string `json:"subject,omitempty"`
	// Notes are what the run could not do as written (e.g. a search judged
	// without a backlog), in words.
	Notes []string `json:"notes,omitempty"`

	// Violations are every reason the run is invalid: the checker's
	// (Check.Violations), then each fault that did not apply as planned,
	// then each expected effect not shown. Valid is their absence.
	Violations []string `json:"violations,omitempty"`
	// FaultErrors are the faults that did not apply as planned (an error,
	// or fewer injected than the schedule plans).
	FaultErrors []string `json:"fault_errors,omitempty"`
	Valid       bool     `json:"valid"`
	Error       string   `json:"error,omitempty"` // the run itself failed (environment, harness)
	// Skipped says why the run could not be carried out here ("cannot
	// mount: ..."): nothing was measured; it is not valid either.
	Skipped string `json:"skipped,omitempty"`
}

// AllViolations are s.Violations, or for a record written before they
// existed, the checker's.
func (s Scenario) AllViolations() []string {
	if s.Violations != nil {
		return s.Violations
	}
	return s.Check.Violations
}

// MissedBound reports whether s is a rate search whose every step (the
// lowest included) missed its bound: no rate passed. That is a measure of
// the machine, recorded as such, not a verdict on correctness (Valid).
func (s Scenario) MissedBound() bool { return len(s.Steps) > 0 && s.BestRate == 0 }

// Environment describes the system under test of one run.
type Environment struct {
	Backend   string            `json:"backend"`
	Services  int               `json:"services"`
	Postgres  string            `json:"postgres,omitempty"`
	Redis     string            `json:"redis,omitempty"`
	DurableDB bool              `json:"durable_db"`
	Settings  map[string]string `json:"settings,omitempty"`
	Subject   string            `json:"subject,omitempty"`
}

// PlantedBug is a negative control: a bug switched on in the service, the
// scenario that should expose it, and what the checker said.
type PlantedBug struct {
	Bug        string   `json:"bug"`
	What       string   `json:"what"`
	Scenario   string   `json:"scenario"`
	Caught     bool     `json:"caught"`
	Violations []string `json:"violations"`
	RunDir     string   `json:"run_dir"`
}

// Property is a property test's outcome with one planted bug (or none).
type Property struct {
	Property    string `json:"property"`
	Bug         string `json:"bug,omitempty"` // "" for the clean run
	Checks      int    `json:"checks"`
	Failed      bool   `json:"failed"`
	ShrunkSteps int    `json:"shrunk_steps,omitempty"`
	Example     string `json:"example,omitempty"`
}

// Bench is results/bench.json.
type Bench struct {
	Header    Header     `json:"header"`
	Scenarios []Scenario `json:"scenarios"`
}

// Verify is results/verify.json.
type Verify struct {
	Header      Header       `json:"header"`
	Scenarios   []Scenario   `json:"scenarios"`
	PlantedBugs []PlantedBug `json:"planted_bugs"`
	Properties  []Property   `json:"properties,omitempty"`
}

// Properties is results/properties.json: the property tests' outcomes, the
// clean runs and the runs with a planted bug switched on, in the order of
// SortProperties.
type Properties struct {
	Header     Header     `json:"header"`
	Properties []Property `json:"properties"`
}

// Peers is results/peers.json: the comparison of subjects (`make peers`),
// the same scenarios run against each subject in turn, interleaved per
// scenario.
type Peers struct {
	Header    Header         `json:"header"`
	Subjects  []PeerSubject  `json:"subjects"`
	Scenarios []PeerScenario `json:"scenarios"`
	// Seconds is how long the whole comparison took (image builds included).
	Seconds float64 `json:"seconds"`
}

// PeerSubject is one subject of a comparison.
type PeerSubject struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Ours        bool   `json:"ours,omitempty"`
	// Repository is where a foreign subject's source is published, and
	// FileCommit the commit its subject file was written against.
	Repository string `json:"repository,omitempty"`
	FileCommit string `json:"file_commit,omitempty"`
	// Commit is the git commit of the checkout it ran from ("" : not a git
	// checkout, or ours: the header's commit), Digest a hash of its files.
	Commit string `json:"commit,omitempty"`
	Digest string `json:"digest,omitempty"`
	Source string `json:"source,omitempty"` // the checkout's folder
	Image  string `json:"image,omitempty"`
	// ImageBuilt says the run built the image, in ImageSeconds.
	ImageBuilt   bool    `json:"image_built,omitempty"`
	ImageSeconds float64 `json:"image_seconds,omitempty"`
	// Error ends the subject's rows: why it could not run (an image that
	// did not build, a subject that never became ready).
	Error string `json:"error,omitempty"`
}

// PeerScenario is one scenario of a comparison: one run per subject, in
// the order of Peers.Subjects (a run that could not be made holds its
// Error).
type PeerScenario struct {
	Name string     `json:"name"`
	Runs []Scenario `json:"runs"`
}

// Attack is a run with a hostile client beside the load: what each kind of
// attack sent and got, and what the load and the service did meanwhile.
type Attack struct {
	Kinds []AttackKind `json:"kinds"`
	// Held are connections opened by clients that never read their answer
	// (or never finish their request), kept open during the attack (in
	// every attack window).
	Held int `json:"held_connections"`
	// Windows is how many baseline windows alternated with as many attack
	// windows.
	Windows int `json:"windows"`
	// BaselineEventsPerSec and AttackEventsPerSec are the load's
	// acknowledged event copies per second without and with the attacker
	// (same load, same run); ThroughputRatio is attack / baseline and
	// MinThroughputRatio the bound it must meet.
	BaselineEventsPerSec float64 `json:"baseline_events_per_sec"`
	AttackEventsPerSec   float64 `json:"attack_events_per_sec"`
	ThroughputRatio      float64 `json:"throughput_ratio"`
	MinThroughputRatio   float64 `json:"min_throughput_ratio"`
	// PeakRSSMiB is the service's peak RSS over the run (every instance's
	// largest), MaxRSSMiB the bound; 0 when not measured.
	PeakRSSMiB float64 `json:"service_peak_rss_mib"`
	MaxRSSMiB  float64 `json:"max_rss_mib"`
}

// AttackKind is one kind of hostile request: how many were sent, their
// answers by status class, and the largest answer against its bound.
type AttackKind struct {
	Name string `json:"name"`
	Want string `json:"want"` // the answers it must get, e.g. "422"
	Sent int64  `json:"sent"`
	// Classes counts answers by status class ("2xx", "4xx", "5xx") and
	// "error" for no answer (a timeout, a refused connection).
	Classes map[string]int64 `json:"classes"`
	// Unwanted counts answers other than Want; OverBound those larger
	// than the bound for their request's size.
	Unwanted      int64   `json:"unwanted"`
	OverBound     int64   `json:"over_bound"`
	RequestBytes  int64   `json:"request_bytes"`
	ResponseBytes int64   `json:"response_bytes"`
	MaxResponse   int64   `json:"max_response_bytes"`
	MaxRatio      float64 `json:"max_amplification"` // the largest response bytes / request bytes
	// Example is the start of one unwanted answer (for the report).
	Example string `json:"example,omitempty"`
}

// Merge adds the kinds and held connections of another attack window
// (kinds matched by name, in order).
func (a *Attack) Merge(w Attack) {
	a.Held += w.Held
	for _, k := range w.Kinds {
		i := slices.IndexFunc(a.Kinds, func(x AttackKind) bool { return x.Name == k.Name })
		if i < 0 {
			a.Kinds = append(a.Kinds, k)
			continue
		}
		x := &a.Kinds[i]
		x.Sent += k.Sent
		x.Unwanted += k.Unwanted
		x.OverBound += k.OverBound
		x.RequestBytes += k.RequestBytes
		x.ResponseBytes += k.ResponseBytes
		x.MaxResponse = max(x.MaxResponse, k.MaxResponse)
		x.MaxRatio = max(x.MaxRatio, k.MaxRatio)
		for c, n := range k.Classes {
			x.Classes[c] += n
		}
		if x.Example == "" {
			x.Example = k.Example
		}
	}
}
