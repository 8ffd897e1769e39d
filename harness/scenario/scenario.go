// Package scenario loads scenario definitions (YAML files under scenarios/)
// and runs them: environment, load, faults, drain, checker, measures.
package scenario

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Scenario is one scenario file.
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Kind is "check" (faults and the checker decide), "bench" (measure)
	// or "search" (find the highest rate meeting a latency bound).
	Kind    string     `yaml:"kind"`
	Env     EnvSpec    `yaml:"env"`
	Events  EventSpec  `yaml:"events"`
	Load    LoadSpec   `yaml:"load"`
	Nemesis []Fault    `yaml:"nemesis"`
	Search  SearchSpec `yaml:"search"`
	// Baseline inserts the same events straight into PostgreSQL with the
	// service's batched upsert, for the service / raw PostgreSQL ratio.
	Baseline bool `yaml:"baseline"`
	// Published holds figures of the original design to print beside ours.
	Published map[string]float64 `yaml:"published"`
	// DrainTimeout bounds the wait for the queue to drain after the load.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// Expect states what the faults must provoke, so a scenario whose fault
	// had no effect does not pass as valid.
	Expect Expect `yaml:"expect"`
	// Smoke overrides parts of the scenario for `make verify` (a few
	// seconds each).
	Smoke *Override `yaml:"smoke"`
}

// Expect lists effects a scenario must show.
type Expect struct {
	// Rejected: some publishes must be refused (503 before anything was
	// queued: backpressure), none may hang.
	Rejected bool `yaml:"rejected"`
}

// EnvSpec is the system under test.
type EnvSpec struct {
	Services int               `yaml:"services"`    // service instances (default 1)
	Durable  bool              `yaml:"durable"`     // PostgreSQL fsync on (benchmarks)
	Fsync    string            `yaml:"appendfsync"` // Redis appendfsync: always (default), everysec
	Settings map[string]string `yaml:"settings"`    // service environment
}

// EventSpec is the event source.
type EventSpec struct {
	Total          int      `yaml:"total"` // copies; 0: as many as the load sends
	DuplicateRatio float64  `yaml:"duplicate_ratio"`
	Topics         int      `yaml:"topics"`
	PerRequest     int      `yaml:"per_request"`
	PayloadBytes   int      `yaml:"payload_bytes"`
	Disorder       Duration `yaml:"disorder"`
	Seed           int64    `yaml:"seed"`
}

// LoadSpec is the load model.
type LoadSpec struct {
	Model    string   `yaml:"model"` // open or closed
	Rate     float64  `yaml:"rate"`  // open: requests/s
	RampTo   float64  `yaml:"ramp_to"`
	Users    int      `yaml:"users"` // closed
	Think    Duration `yaml:"think"`
	Duration Duration `yaml:"duration"`
	Timeout  Duration `yaml:"timeout"`
}

// Fault is one line of the nemesis schedule.
type Fault struct {
	// Fault is kill, terminate, pause, cut, blackhole or slow.
	Fault string `yaml:"fault"`
	// Target is a node (service-0, redis, postgres) or "service" for a
	// random service instance each time.
	Target string `yaml:"target"`
	Count  int    `yaml:"count"` // how many times
	// Every is the pause between two faults, drawn in [Every, 2*Every).
	Every Duration `yaml:"every"`
	// For is how long a fault lasts before the heal (restart, resume, link
	// restored), drawn in [For, 2*For); 0: heal at once.
	For Duration `yaml:"for"`
	// Latency is the added delay of a slow link.
	Latency Duration `yaml:"latency"`
	// During frames each fault in another one on a different node: it
	// starts Lead before the fault and is healed halfway through its hold.
	During *Frame `yaml:"during"`
}

// Frame is a fault that holds while another is injected.
type Frame struct {
	Fault   string   `yaml:"fault"`
	Target  string   `yaml:"target"` // a node: service-N, redis or postgres
	Lead    Duration `yaml:"lead"`
	Latency Duration `yaml:"latency"`
}

// SearchSpec drives a rate search: open-model steps of StepDuration at
// rates Start, Start*Factor, ... while the step holds p99 below P99 and the
// backlog does not grow.
type SearchSpec struct {
	Start        float64  `yaml:"start"`
	Factor       float64  `yaml:"factor"`
	MaxSteps     int      `yaml:"max_steps"`
	StepDuration Duration `yaml:"step_duration"`
	P99          Duration `yaml:"p99"`
	// Final: after the search, send Events.Total copies at the highest
	// passing rate (the sustained figure).
	Final bool `yaml:"final"`
}

// Override is the part of a scenario `make verify` shortens.
type Override struct {
	Events  *EventSpec  `yaml:"events"`
	Load    *LoadSpec   `yaml:"load"`
	Nemesis []Fault     `yaml:"nemesis"`
	Search  *SearchSpec `yaml:"search"`
}

// Duration is a time.Duration written as "1.5s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses "300ms", "2s", "1m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like \"2s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Dir finds the scenarios folder: $CHRONICLE_SCENARIOS, else ./scenarios
// in the working directory or any parent (tests run in package folders).
func Dir() (string, error) {
	if d := os.Getenv("CHRONICLE_SCENARIOS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("scenario: working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, "scenarios")); err == nil && st.IsDir() {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return filepath.Join(d, "scenarios"), nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("scenario: no scenarios folder above %s (set CHRONICLE_SCENARIOS)", wd)
		}
	}
}

// Names lists the scenarios in the folder.
func Names() ([]string, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("scenario: list %s: %w", dir, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	sort.Strings(names)
	return names, nil
}

// Load reads scenario name (a name in the folder, or a path to a file).
// With smoke, the scenario's smoke overrides apply.
func Load(name string, smoke bool) (*Scenario, error) {
	path := name
	if !strings.ContainsRune(name, os.PathSeparator) && !strings.HasSuffix(name, ".yaml") {
		dir, err := Dir()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, name+".yaml")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return Parse(b, smoke)
}

// Parse reads a scenario document. Unknown keys are errors.
func Parse(b []byte, smoke bool) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario: parse: %w", err)
	}
	if smoke && s.Smoke != nil {
		if o := s.Smoke.Events; o != nil {
			s.Events = *o
		}
		if o := s.Smoke.Load; o != nil {
			s.Load = *o
		}
		if s.Smoke.Nemesis != nil {
			s.Nemesis = s.Smoke.Nemesis
		}
		if o := s.Smoke.Search; o != nil {
			s.Search = *o
		}
	}
	s.defaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	return &s, nil
}

func (s *Scenario) defaults() {
	if s.Kind == "" {
		s.Kind = "check"
	}
	if s.Env.Services == 0 {
		s.Env.Services = 1
	}
	if s.Events.Topics == 0 {
		s.Events.Topics = 10
	}
	if s.Events.PerRequest == 0 {
		s.Events.PerRequest = 1
	}
	if s.Events.Seed == 0 {
		s.Events.Seed = 1
	}
	if s.Load.Timeout == 0 {
		s.Load.Timeout = Duration(10 * time.Second)
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = Duration(2 * time.Minute)
	}
	if s.Search.Factor == 0 {
		s.Search.Factor = 1.5
	}
	for i := range s.Nemesis {
		if s.Nemesis[i].Count == 0 {
			s.Nemesis[i].Count = 1
		}
	}
}

// Faults the nemesis knows.
var faultKinds = map[string]bool{"kill": true, "terminate": true, "pause": true, "cut": true, "blackhole": true, "slow": true}

func (s *Scenario) validate() error {
	if s.Name == "" {
		return fmt.Errorf("name: missing")
	}
	switch s.Kind {
	case "check", "bench", "search":
	default:
		return fmt.Errorf("kind %q: must be check, bench or search", s.Kind)
	}
	switch s.Load.Model {
	case "open":
		if s.Load.Rate <= 0 && s.Kind != "search" {
			return fmt.Errorf("load.rate: must be > 0 for the open model")
		}
	case "closed":
		if s.Load.Users <= 0 {
			return fmt.Errorf("load.users: must be > 0 for the closed model")
		}
	default:
		return fmt.Errorf("load.model %q: must be open or closed", s.Load.Model)
	}
	if s.Load.Duration == 0 && s.Events.Total == 0 && s.Kind != "search" {
		return fmt.Errorf("load.duration or events.total: one must bound the run")
	}
	if s.Events.DuplicateRatio < 0 || s.Events.DuplicateRatio >= 1 {
		return fmt.Errorf("events.duplicate_ratio %v: must be in [0, 1)", s.Events.DuplicateRatio)
	}
	if s.Kind == "search" && (s.Search.Start <= 0 || s.Search.StepDuration == 0 || s.Search.P99 == 0 || s.Search.MaxSteps <= 0) {
		return fmt.Errorf("search: start, step_duration, p99 and max_steps are required")
	}
	for i, f := range s.Nemesis {
		if err := checkFault(fmt.Sprintf("nemesis[%d]", i), f.Fault, f.Target, f.Latency); err != nil {
			return err
		}
		if err := s.validateFrame(i); err != nil {
			return err
		}
	}
	return nil
}

// checkFault checks one fault of the schedule; field names it in errors
// ("nemesis[0]", "nemesis[0].during").
func checkFault(field, fault, target string, latency Duration) error {
	switch {
	case !faultKinds[fault]:
		return fmt.Errorf("%s.fault %q: must be one of kill, terminate, pause, cut, blackhole, slow", field, fault)
	case target == "":
		return fmt.Errorf("%s.target: missing", field)
	case (fault == "cut" || fault == "blackhole" || fault == "slow") && target != "redis" && target != "postgres":
		return fmt.Errorf("%s: %s applies to the link to redis or postgres, not %q", field, fault, target)
	case fault == "slow" && latency == 0:
		return fmt.Errorf("%s.latency: required for slow", field)
	}
	return nil
}

// validateFrame checks nemesis[i].during: a fault the nemesis knows, on a
// node of its own (no other line targets it, so the two never overlap).
func (s *Scenario) validateFrame(i int) error {
	f := s.Nemesis[i]
	u := f.During
	if u == nil {
		return nil
	}
	field := fmt.Sprintf("nemesis[%d].during", i)
	if err := checkFault(field, u.Fault, u.Target, u.Latency); err != nil {
		return err
	}
	switch {
	case u.Target == "service":
		return fmt.Errorf("%s.target %q: must name one node (service-N, redis or postgres)", field, u.Target)
	case u.Lead <= 0:
		return fmt.Errorf("%s.lead: must be > 0 (how long the frame holds before the fault)", field)
	}
	for j, g := range s.Nemesis {
		if g.Target == u.Target || g.Target == "service" && strings.HasPrefix(u.Target, "service-") {
			return fmt.Errorf("%s.target %q: nemesis[%d] targets it too, and the two would overlap", field, u.Target, j)
		}
		if j != i && g.During != nil && g.During.Target == u.Target && g.Target != f.Target {
			return fmt.Errorf("%s.target %q: nemesis[%d] frames its faults in it too, on another timeline", field, u.Target, j)
		}
	}
	return nil
}
