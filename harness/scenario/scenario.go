// Package scenario loads scenario definitions (YAML files under scenarios/)
// and runs them: environment, load, faults, drain, checker, measures.
//
// A scenario file only composes what other packages define, and each part
// is checked by the package that owns it: the event source by gen, the
// load model by load, the fault schedule by nemesis, the service settings
// by service/config. This package decodes the YAML, applies defaults and
// the smoke overrides, and checks only what is its own (the kind, the rate
// search, what bounds the run).
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/harness/nemesis"
	"github.com/chronicleweaver/chronicleweaver/internal/suggest"
	"github.com/chronicleweaver/chronicleweaver/service/config"
)

// Kinds of scenario.
const (
	KindCheck  = "check"  // faults and the checker decide
	KindBench  = "bench"  // measure
	KindSearch = "search" // find the highest rate meeting a latency bound
)

// Scenario is one scenario file.
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Kind is KindCheck (default), KindBench or KindSearch.
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
	// Attack runs a hostile client beside the load (harness/attack): the
	// load runs alone first (the baseline phase), then as long again with
	// the attacker, and the run is valid only if every attack was sent and
	// answered as it must be, the load kept MinThroughputRatio of its
	// baseline throughput and the service stayed under MaxRSSMiB.
	Attack *AttackSpec `yaml:"attack"`
	// Smoke overrides parts of the scenario for `make verify` (a few
	// seconds each).
	Smoke *Override `yaml:"smoke"`
	// Peers overrides parts of the scenario in the comparison of subjects
	// (`make peers`): e.g. a bounded rate search, so that a slow subject
	// does not take an hour.
	Peers *Override `yaml:"peers"`
}

// EnvSpec is the system under test.
type EnvSpec struct {
	Services int               `yaml:"services"`    // service instances (default 1)
	Durable  bool              `yaml:"durable"`     // PostgreSQL fsync on (benchmarks)
	Fsync    string            `yaml:"appendfsync"` // Redis appendfsync: always (default), everysec
	Settings map[string]string `yaml:"settings"`    // service environment (service/config checks it)
	// RedisDisk and PostgresDisk put Redis's AOF directory, or
	// PostgreSQL's data directory, on a small filesystem of that size
	// ("64MiB") that a disk-full fault fills (local backend, as root; the
	// run is skipped where it cannot be made).
	RedisDisk    Size `yaml:"redis_disk"`
	PostgresDisk Size `yaml:"postgres_disk"`
}

// Size is a number of bytes written "64MiB", "512KiB", "1GiB" or "4096".
type Size int64

// UnmarshalYAML parses a size.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: size must be a string like \"64MiB\"", n.Line)
	}
	v, err := ParseSize(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*z = Size(v)
	return nil
}

// MarshalYAML writes the size in bytes.
func (z Size) MarshalYAML() (any, error) { return int64(z), nil }

// ParseSize parses a whole number of bytes with an optional KiB, MiB or
// GiB suffix.
func ParseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			num, mult = strings.TrimSuffix(s, suffix), m
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v <= 0 || v > (1<<40)/mult {
		return 0, fmt.Errorf("size %q: want a positive whole number of bytes, optionally with KiB, MiB or GiB (\"64MiB\")", s)
	}
	return v * mult, nil
}

// EventSpec is the event source (a gen.Config; gen checks it).
type EventSpec struct {
	Total          int      `yaml:"total"` // copies; 0: as many as the load sends
	DuplicateRatio float64  `yaml:"duplicate_ratio"`
	Topics         int      `yaml:"topics"`
	PerRequest     int      `yaml:"per_request"`
	PayloadBytes   int      `yaml:"payload_bytes"`
	Disorder       Duration `yaml:"disorder"`
	Seed           int64    `yaml:"seed"`
	// SharedIDs is the fraction of keys that reuse an event id already used
	// under another topic (gen.Config.SharedIDs). Unset: gen.DefaultSharedIDs
	// in a scenario with faults and at least 2 topics, else 0; 0 turns it
	// off.
	SharedIDs *float64 `yaml:"shared_ids"`
	// IdempotencyKeys (default true in checked scenarios, false in bench
	// and search ones) sends an Idempotency-Key with every
	// request to a subject that accepts one (api.publish.idempotency_key)
	// and retries unknown outcomes with it; the checker then demands
	// exact accounting per request. false: no key, no retry, the bound.
	IdempotencyKeys *bool `yaml:"idempotency_keys"`
}

// LoadSpec is the load model (a load.Model; load checks it).
type LoadSpec struct {
	Model    string   `yaml:"model"` // load.Open or load.Closed
	Rate     float64  `yaml:"rate"`  // open: requests/s
	RampTo   float64  `yaml:"ramp_to"`
	Users    int      `yaml:"users"` // closed
	Think    Duration `yaml:"think"`
	Duration Duration `yaml:"duration"`
	Timeout  Duration `yaml:"timeout"`
}

// Fault is one line of the nemesis schedule (a nemesis.Spec; nemesis
// checks it).
type Fault struct {
	// Fault is one of nemesis.Kinds.
	Fault string `yaml:"fault"`
	// Target is a node (service-0, redis, postgres) or nemesis.AnyService
	// ("service") for a random service instance each time.
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
	// Ceilings: after the search, measure the HTTP ceiling (a null handler
	// in the harness) and the append ceiling (queue.Append alone) with the
	// same steps from the best rate up (see ceiling.go).
	Ceilings bool `yaml:"ceilings"`
}

// AttackSpec is the hostile client of a scenario (harness/attack).
type AttackSpec struct {
	Rate    float64 `yaml:"rate"`    // hostile requests per second, the kinds in turn
	Holders int     `yaml:"holders"` // connections that never read (and as many that never finish a request)
	// SeedTopics and SeedPageEvents are stored before the run (their own
	// namespace): the topics /stats and /audit/summary must bound, and
	// events of 30,000 '<' each for the /events pages.
	SeedTopics     int `yaml:"seed_topics"`
	SeedPageEvents int `yaml:"seed_page_events"`
	// MinThroughputRatio: the load's acknowledged events/s with the
	// attacker over those without it (0 < ratio <= 1).
	MinThroughputRatio float64 `yaml:"min_throughput_ratio"`
	// MaxRSSMiB bounds the service's peak RSS over the run.
	MaxRSSMiB float64 `yaml:"max_rss_mib"`
	// Windows is how many baseline windows and as many attack windows
	// alternate, each of load.duration (default 1).
	Windows int `yaml:"windows"`
}

// windows is Windows, 1 when unset.
func (a *AttackSpec) windows() int { return max(a.Windows, 1) }

// Override is the part of a scenario `make verify` shortens.
type Override struct {
	Attack  *AttackSpec `yaml:"attack"`
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

// Names lists the scenarios in the folder (its YAML files but SuitesFile).
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
		if filepath.Base(f) == SuitesFile {
			continue
		}
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	sort.Strings(names)
	return names, nil
}

// Load reads scenario name (a name in the folder, or a path to a file).
// With smoke, the scenario's smoke overrides apply.
func Load(name string, smoke bool) (*Scenario, error) {
	path, err := filePath(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && path != name {
		names, _ := Names()
		return nil, fmt.Errorf("scenario %q: no such scenario in %s%s; `chronicle list` shows them all",
			name, RepoRelative(filepath.Dir(path)), suggest.Hint(name, names))
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return Parse(b, smoke)
}

// filePath is the file of scenario name (a name in the folder, or a path).
func filePath(name string) (string, error) {
	if strings.ContainsRune(name, os.PathSeparator) || strings.HasSuffix(name, ".yaml") {
		return name, nil
	}
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name+".yaml"), nil
}

// Parse reads a scenario document. Unknown keys are errors.
func Parse(b []byte, smoke bool) (*Scenario, error) { return parse(b, smoke, false) }

// LoadPeers is Load for the comparison of subjects: the scenario's peers
// overrides apply (and then, with smoke, the smoke ones).
func LoadPeers(name string, smoke bool) (*Scenario, error) {
	path, err := filePath(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return parse(b, smoke, true)
}

func parse(b []byte, smoke, peers bool) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario: parse: %w", err)
	}
	if peers {
		s.override(s.Peers)
	}
	if smoke {
		s.override(s.Smoke)
	}
	s.defaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	return &s, nil
}

// override applies o's parts (nil: none).
func (s *Scenario) override(o *Override) {
	if o == nil {
		return
	}
	if o.Events != nil {
		s.Events = *o.Events
	}
	if o.Attack != nil {
		s.Attack = o.Attack
	}
	if o.Load != nil {
		s.Load = *o.Load
	}
	if o.Nemesis != nil {
		s.Nemesis = o.Nemesis
	}
	if o.Search != nil {
		s.Search = *o.Search
	}
}

func (s *Scenario) defaults() {
	if s.Kind == "" {
		s.Kind = KindCheck
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
	if s.Events.SharedIDs == nil {
		f := 0.0
		if len(s.Nemesis) > 0 && s.Events.Topics >= 2 {
			f = gen.DefaultSharedIDs
		}
		s.Events.SharedIDs = &f
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

// validate checks each part of the scenario with the package that owns it,
// as the run will use it, and the rules that are the scenario's own.
func (s *Scenario) validate() error {
	if s.Name == "" {
		return errors.New("name: missing")
	}
	switch s.Kind {
	case KindCheck, KindBench, KindSearch:
	default:
		return fmt.Errorf("kind %q: must be %s, %s or %s", s.Kind, KindCheck, KindBench, KindSearch)
	}
	if _, err := config.FromEnv(func(k string) string { return s.Env.Settings[k] }); err != nil {
		return fmt.Errorf("env.settings: %w", err)
	}
	if s.Kind == KindSearch {
		if s.Search.Start <= 0 || s.Search.StepDuration == 0 || s.Search.P99 == 0 || s.Search.MaxSteps <= 0 {
			return errors.New("search: start, step_duration, p99 and max_steps are required")
		}
		if s.Load.Model != load.Open {
			return fmt.Errorf("load.model %q: a search steps the %s model", s.Load.Model, load.Open)
		}
		if err := stepModel(s, s.Search.Start, s.Search.StepDuration.D()).Validate(); err != nil {
			return err
		}
	} else {
		if err := model(s).Validate(); err != nil {
			return err
		}
		if s.Load.Duration == 0 && s.Events.Total == 0 {
			return errors.New("load.duration or events.total: one must bound the run")
		}
	}
	// Validated under a run ID as long as the longest the run uses.
	if err := sourceConfig(s, newRunID(s.Name)+"-f").Validate(); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if err := nemesis.Validate(nemesisSpecs(s), s.Env.Services); err != nil {
		return err
	}
	if err := s.validateDisks(); err != nil {
		return err
	}
	if err := s.validateAttack(); err != nil {
		return err
	}
	return s.validateExpect()
}

// validateDisks checks that a disk-full fault hits a dependency started on
// a small filesystem (env redis_disk, postgres_disk).
func (s *Scenario) validateDisks() error {
	for i, f := range s.Nemesis {
		faults := []struct{ field, fault, target string }{{fmt.Sprintf("nemesis[%d]", i), f.Fault, f.Target}}
		if u := f.During; u != nil {
			faults = append(faults, struct{ field, fault, target string }{fmt.Sprintf("nemesis[%d].during", i), u.Fault, u.Target})
		}
		for _, g := range faults {
			if g.fault != nemesis.DiskFull {
				continue
			}
			if g.target == "redis" && s.Env.RedisDisk == 0 || g.target == "postgres" && s.Env.PostgresDisk == 0 {
				return fmt.Errorf("%s: %s on %s needs env.%s_disk (the size of the filesystem it fills)", g.field, g.fault, g.target, g.target)
			}
		}
	}
	return nil
}

// validateAttack checks the attack: a checked scenario with one service,
// no faults (the throughput ratio would measure them too) and a load of
// fixed duration (each phase runs it).
func (s *Scenario) validateAttack() error {
	a := s.Attack
	if a == nil {
		return nil
	}
	switch {
	case s.Kind != KindCheck:
		return fmt.Errorf("attack: only a %s scenario takes an attack, not %s", KindCheck, s.Kind)
	case len(s.Nemesis) > 0:
		return errors.New("attack: a scenario with an attack has no nemesis (the throughput ratio would measure the faults too)")
	case s.Env.Services != 1:
		return errors.New("attack: env.services must be 1")
	case s.Load.Duration == 0 || s.Events.Total != 0:
		return errors.New("attack: load.duration bounds each window (baseline, then attack) and events.total must be 0")
	case a.Rate <= 0 || a.Rate > 1000:
		return fmt.Errorf("attack.rate %v: must be in (0, 1000] requests/s", a.Rate)
	case a.Holders < 0 || a.Holders > 1000:
		return fmt.Errorf("attack.holders %d: must be in [0, 1000]", a.Holders)
	case a.SeedTopics < 0 || a.SeedPageEvents < 0:
		return errors.New("attack.seed_topics and attack.seed_page_events: must be >= 0")
	case a.MinThroughputRatio <= 0 || a.MinThroughputRatio > 1:
		return fmt.Errorf("attack.min_throughput_ratio %v: must be in (0, 1]", a.MinThroughputRatio)
	case a.Windows < 0 || a.Windows > 100:
		return fmt.Errorf("attack.windows %d: must be in [0, 100] (0: 1)", a.Windows)
	case a.MaxRSSMiB <= 0:
		return fmt.Errorf("attack.max_rss_mib %v: must be above 0", a.MaxRSSMiB)
	}
	return nil
}

// validateExpect checks that the faults and the effects go together: a
// scenario with faults names at least one effect they must provoke (else a
// fault that silently does nothing passes), and one without faults names
// none; slowed needs a slow link.
func (s *Scenario) validateExpect() error {
	n := len(s.effects())
	switch {
	case len(s.Nemesis) > 0 && n == 0:
		return errors.New("expect: a scenario with faults must name at least one effect they provoke (rejected, unknown, recovered, retried, batch_timeout, own_pending, claimed, already_applied, appended_twice, drain_cut, disk_refused, disk_full, slowed)")
	case len(s.Nemesis) == 0 && n > 0:
		return errors.New("expect: effects are what faults provoke, and the scenario has no nemesis")
	}
	if s.Expect.Slowed {
		slow := false
		for _, f := range s.Nemesis {
			slow = slow || f.Fault == nemesis.Slow || f.During != nil && f.During.Fault == nemesis.Slow
		}
		if !slow {
			return errors.New("expect.slowed: no fault of the scenario slows a link")
		}
	}
	return nil
}

// sharedIDs is SharedIDs, 0 when unset (defaults set it).
func (e EventSpec) sharedIDs() float64 {
	if e.SharedIDs == nil {
		return 0
	}
	return *e.SharedIDs
}

// sourceConfig is the scenario's event source under a run namespace.
func sourceConfig(s *Scenario, runID string) gen.Config {
	return gen.Config{
		Seed: s.Events.Seed, RunID: runID, Events: s.Events.Total, DuplicateRatio: s.Events.DuplicateRatio,
		Topics: s.Events.Topics, EventsPerRequest: s.Events.PerRequest, PayloadBytes: s.Events.PayloadBytes,
		Disorder: s.Events.Disorder.D(), SharedIDs: s.Events.sharedIDs(),
	}
}

// model is the scenario's load model.
func model(s *Scenario) load.Model {
	return load.Model{
		Kind: s.Load.Model, Rate: s.Load.Rate, RampTo: s.Load.RampTo, Users: s.Load.Users,
		Think: s.Load.Think.D(), Duration: s.Load.Duration.D(), Timeout: s.Load.Timeout.D(),
	}
}

// stepModel is the load model of a search step (and, with no duration, of
// the final run): the open model at rate.
func stepModel(s *Scenario, rate float64, d time.Duration) load.Model {
	m := model(s)
	m.Kind, m.Rate, m.RampTo, m.Duration = load.Open, rate, 0, d
	return m
}

// nemesisSpecs is the scenario's fault schedule.
func nemesisSpecs(s *Scenario) []nemesis.Spec {
	specs := make([]nemesis.Spec, len(s.Nemesis))
	for i, f := range s.Nemesis {
		specs[i] = nemesis.Spec{Fault: f.Fault, Target: f.Target, Count: f.Count, Every: f.Every.D(), For: f.For.D(), Latency: f.Latency.D()}
		if u := f.During; u != nil {
			specs[i].During = &nemesis.Frame{Fault: u.Fault, Target: u.Target, Lead: u.Lead.D(), Latency: u.Latency.D()}
		}
	}
	return specs
}
