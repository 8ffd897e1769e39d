// Package subject describes a subject under test: an implementation of the
// aggregator contract (POST /publish, GET /stats, GET /events, deduplication
// on (topic, event_id), Redis and PostgreSQL) that the harness starts, loads,
// faults and reads back. Subjects are data, subjects/NAME.yaml, so judging
// another implementation is a file, not code:
//
//	how to start it   run.command (and run.dir, run.env) or several processes;
//	                  image: the Debian suite and packages its image is built on
//	how to talk to it api: the request body shape, the success statuses, the
//	                  readiness path, the /stats fields (flat or nested, any
//	                  spelling), the /events shape, /audit/summary or not
//	how to judge it   backlog: where its queue can be measured (a Redis list);
//	                  readback: the table and columns of its stored events,
//	                  read straight from PostgreSQL, and its commit time column
//
// Whatever a subject does not offer is a gap, never a pass: Gaps names each
// check that cannot be made and why, and the checker reports those checks as
// not measured. The harness's own service is a subject file too
// (subjects/chronicleweaver.yaml), and the default.
package subject

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/shlex"
	"go.yaml.in/yaml/v3"
)

// Default is the name of the default subject: this repository's service.
const Default = "chronicleweaver"

// Subject is one subjects/NAME.yaml.
type Subject struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Ours marks this module's service: the harness builds it from this
	// module (binary or image) and validates scenario settings with
	// service/config. A foreign subject runs from a checkout the user
	// points at (the source is never part of this repository).
	Ours bool `yaml:"ours"`
	// Upstream says where a foreign subject's source is published and the
	// commit this file was written against (the run records the commit of
	// the checkout it was given).
	Upstream Upstream `yaml:"upstream"`
	Run      Run      `yaml:"run"`
	// Processes, when set, replace Run.Command: an instance of the subject
	// is several processes (e.g. an HTTP edge and a separate consumer),
	// each started, faulted and measured on its own.
	Processes []Process `yaml:"processes"`
	Image     Image     `yaml:"image"`
	API       API       `yaml:"api"`
	Backlog   Backlog   `yaml:"backlog"`
	ReadBack  ReadBack  `yaml:"readback"`
}

// Upstream is where a foreign subject's source comes from.
type Upstream struct {
	Repository string `yaml:"repository"` // owner/name
	Commit     string `yaml:"commit"`     // the commit the file was written against
	License    string `yaml:"license"`
}

// Run is how one instance is started.
type Run struct {
	// Command is the command line of the (single) process, split like a
	// shell would (quotes, no expansion but ${VAR} of the contract, see
	// Vars). For ours it may be empty: the harness builds the binary.
	Command string `yaml:"command"`
	// Dir is where the command runs, relative to the checkout ("": its root).
	Dir string `yaml:"dir"`
	// Env is more environment; values may use ${VAR} of the contract (a
	// subject that reads BROKER_URL gets BROKER_URL: ${REDIS_URL}).
	Env map[string]string `yaml:"env"`
	// ShutdownTimeout bounds a graceful stop (SIGTERM) before the harness
	// calls it failed (default 30s; ours: its SHUTDOWN_TIMEOUT).
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Process is one process of a subject made of several.
type Process struct {
	Name    string `yaml:"name"`
	Command string `yaml:"command"`
	// HTTP marks the process that serves the API (exactly one does).
	HTTP bool `yaml:"http"`
}

// Image is how a foreign subject's image is built: a base image of Debian
// Suite with Packages (debootstrap, no registry), then the checkout copied
// in and run as User.
type Image struct {
	Suite    string   `yaml:"suite"`
	Packages []string `yaml:"packages"`
	User     string   `yaml:"user"` // default 65534 (nobody)
}

// Body shapes of POST /publish.
const (
	BodyBatch  = "batch"  // {"events": [event, ...]} (the contract's)
	BodyList   = "list"   // [event, ...]
	BodySingle = "single" // one event object per request
)

// Events shapes of GET /events.
const (
	EventsObject = "object" // {count, <Field>: [...]} (Field: events or items)
	EventsList   = "list"   // a bare list
)

// API is how the subject's HTTP API differs from the contract.
type API struct {
	Publish Publish `yaml:"publish"`
	// Ready is the readiness path: "auto" (default) polls /ready and, when
	// the subject answers 404 there, /health; any other value is the path
	// polled (e.g. /stats for a subject with neither).
	Ready        string `yaml:"ready"`
	Stats        Stats  `yaml:"stats"`
	Events       Events `yaml:"events"`
	AuditSummary string `yaml:"audit_summary"` // "" : none
}

// Publish is POST /publish.
type Publish struct {
	Path string `yaml:"path"` // default /publish
	Body string `yaml:"body"` // BodyBatch (default), BodyList or BodySingle
	// Success are the statuses that acknowledge a request (default [200]);
	// another 2xx is an unknown outcome.
	Success []int `yaml:"success"`
	// IdempotencyKey is the request header in which the subject accepts
	// an idempotency key (a repeated key is acknowledged, not applied
	// again), e.g. Idempotency-Key; empty: it has none, and the harness
	// sends no key and retries nothing.
	IdempotencyKey string `yaml:"idempotency_key"`
}

// Stats maps GET /stats: each field is a dotted path into the answer
// ("uptime_stats.received_api"), "" when the subject has no such field.
type Stats struct {
	Path              string `yaml:"path"` // default /stats
	Received          string `yaml:"received"`
	UniqueProcessed   string `yaml:"unique_processed"`
	DuplicatedDropped string `yaml:"duplicated_dropped"`
	QueueDepth        string `yaml:"queue_depth"`
	Pending           string `yaml:"pending"`
	DeadLettered      string `yaml:"dead_lettered"`
	// Quiet is how long the counters must stay unchanged for the queue to
	// count as drained when the subject reports no backlog (default 5s).
	Quiet Duration `yaml:"quiet"`
	// Stall is how long a non-empty backlog may stay without progress
	// before the drain is called stalled (default 20s, the harness's).
	Stall Duration `yaml:"stall"`
}

// Events maps GET /events.
type Events struct {
	Path  string `yaml:"path"`  // default /events
	Shape string `yaml:"shape"` // EventsObject (default) or EventsList
	Field string `yaml:"field"` // the list's key in an object (default events)
	// Limit is the page-size query parameter ("" : none), MaxLimit the
	// largest page the subject returns (0: unknown or unbounded).
	Limit    string `yaml:"limit"`
	MaxLimit int    `yaml:"max_limit"`
	// Cursor is the query parameter of the next page and NextCursor the
	// answer's field naming it ("" : no pagination).
	Cursor     string `yaml:"cursor"`
	NextCursor string `yaml:"next_cursor"`
}

// Backlog is where the subject's unprocessed events can be counted when its
// /stats does not say.
type Backlog struct {
	RedisList string `yaml:"redis_list"` // LLEN of this key
}

// ReadBack is the subject's table of stored events in PostgreSQL.
type ReadBack struct {
	Table   string `yaml:"table"`
	Topic   string `yaml:"topic"`    // default topic
	EventID string `yaml:"event_id"` // default event_id
	// CommittedAt is the column holding when the row was written ("" :
	// publish-to-commit latency is not measured).
	CommittedAt string `yaml:"committed_at"`
	// ReceivedAt is the column holding when the subject received the
	// event ("" : latency is measured from the request's send).
	ReceivedAt string `yaml:"received_at"`
}

// Duration is a time.Duration written as "5s".
type Duration time.Duration

// UnmarshalYAML parses "300ms", "2s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like \"5s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Vars are the variables of the environment contract every instance is
// given, and that commands and Run.Env may use as ${VAR}.
var Vars = []string{"APP_HOST", "APP_PORT", "DATABASE_URL", "REDIS_URL", "WORKER_COUNT", "INSTANCE_ID"}

// Dir finds the subjects folder: $CHRONICLE_SUBJECTS, else ./subjects in
// the working directory or a parent that holds go.mod.
func Dir() (string, error) {
	if d := os.Getenv("CHRONICLE_SUBJECTS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("subject: working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, "subjects")); err == nil && st.IsDir() {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return filepath.Join(d, "subjects"), nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("subject: no subjects folder above %s (set CHRONICLE_SUBJECTS)", wd)
		}
	}
}

// Names lists the subject files of the folder.
func Names() ([]string, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("subject: list %s: %w", dir, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	sort.Strings(names)
	return names, nil
}

// Load reads subject name (a name in the folder, or a path to a file).
func Load(name string) (*Subject, error) {
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
		return nil, fmt.Errorf("subject %s: %w", name, err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse reads a subject document: unknown keys are errors, defaults are
// applied, and every field is checked (errors name it as the file spells
// it).
func Parse(b []byte) (*Subject, error) {
	var s Subject
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("subject: parse: %w", err)
	}
	s.defaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("subject %s: %w", s.Name, err)
	}
	return &s, nil
}

func (s *Subject) defaults() {
	a := &s.API
	if a.Publish.Path == "" {
		a.Publish.Path = "/publish"
	}
	if a.Publish.Body == "" {
		a.Publish.Body = BodyBatch
	}
	if len(a.Publish.Success) == 0 {
		a.Publish.Success = []int{200}
	}
	if a.Ready == "" {
		a.Ready = "auto"
	}
	if a.Stats.Path == "" {
		a.Stats.Path = "/stats"
	}
	if a.Stats.Quiet == 0 {
		a.Stats.Quiet = Duration(5 * time.Second)
	}
	if a.Stats.Stall == 0 {
		a.Stats.Stall = Duration(20 * time.Second)
	}
	if a.Events.Path == "" {
		a.Events.Path = "/events"
	}
	if a.Events.Shape == "" {
		a.Events.Shape = EventsObject
	}
	if a.Events.Field == "" && a.Events.Shape == EventsObject {
		a.Events.Field = "events"
	}
	if s.ReadBack.Table != "" {
		if s.ReadBack.Topic == "" {
			s.ReadBack.Topic = "topic"
		}
		if s.ReadBack.EventID == "" {
			s.ReadBack.EventID = "event_id"
		}
	}
	if s.Run.ShutdownTimeout == 0 {
		s.Run.ShutdownTimeout = Duration(30 * time.Second)
	}
	if s.Image.User == "" {
		s.Image.User = "65534"
	}
}

var (
	nameRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	identRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	pathRe    = regexp.MustCompile(`^/[A-Za-z0-9/_.-]*$`)
	fieldRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	debRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)
	suiteRe   = regexp.MustCompile(`^[a-z]+$`)
)

// Validate checks every field; errors name the field ("api.publish.body").
func (s *Subject) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if !nameRe.MatchString(s.Name) {
		bad("name", "%q: want lower-case letters, digits and dashes", s.Name)
	}
	switch {
	case len(s.Processes) > 0 && s.Run.Command != "":
		bad("processes", "set either run.command or processes, not both")
	case len(s.Processes) > 0:
		seen, http := map[string]bool{}, 0
		for i, p := range s.Processes {
			f := fmt.Sprintf("processes[%d]", i)
			if !nameRe.MatchString(p.Name) || seen[p.Name] {
				bad(f+".name", "%q: want a unique lower-case name", p.Name)
			}
			seen[p.Name] = true
			if p.HTTP {
				http++
			}
			if _, err := splitCommand(p.Command); err != nil {
				bad(f+".command", "%v", err)
			}
		}
		if http != 1 {
			bad("processes", "exactly one process must serve the API (http: true), %d do", http)
		}
	case s.Run.Command == "" && !s.Ours:
		bad("run.command", "missing (how to start the subject)")
	case s.Run.Command != "":
		if _, err := splitCommand(s.Run.Command); err != nil {
			bad("run.command", "%v", err)
		}
	}
	if d := s.Run.Dir; d != "" && (filepath.IsAbs(d) || strings.HasPrefix(filepath.Clean(d), "..")) {
		bad("run.dir", "%q: must be a folder inside the checkout", d)
	}
	for k, v := range s.Run.Env {
		if !envNameRe.MatchString(k) {
			bad("run.env", "%q is not an environment variable name", k)
		}
		if slices.Contains(Vars, k) {
			bad("run.env."+k, "chosen by the harness (the environment contract)")
		}
		if err := checkVars(v); err != nil {
			bad("run.env."+k, "%v", err)
		}
	}
	if s.Run.ShutdownTimeout < 0 {
		bad("run.shutdown_timeout", "must be >= 0")
	}
	if !s.Ours {
		if !suiteRe.MatchString(s.Image.Suite) {
			bad("image.suite", "%q: want a Debian code name (e.g. trixie)", s.Image.Suite)
		}
		if len(s.Image.Packages) == 0 {
			bad("image.packages", "missing (the Debian packages the subject needs)")
		}
		for i, p := range s.Image.Packages {
			if !debRe.MatchString(p) {
				bad(fmt.Sprintf("image.packages[%d]", i), "%q is not a Debian package name", p)
			}
		}
		if s.Upstream.Repository == "" {
			bad("upstream.repository", "missing (where the source is published)")
		}
	}
	a := s.API
	for field, p := range map[string]string{"api.publish.path": a.Publish.Path, "api.stats.path": a.Stats.Path, "api.events.path": a.Events.Path} {
		if !pathRe.MatchString(p) {
			bad(field, "%q: want a path like /publish", p)
		}
	}
	if a.Ready != "auto" && !pathRe.MatchString(a.Ready) {
		bad("api.ready", "%q: want auto or a path like /health", a.Ready)
	}
	if a.AuditSummary != "" && !pathRe.MatchString(a.AuditSummary) {
		bad("api.audit_summary", "%q: want a path or nothing", a.AuditSummary)
	}
	switch a.Publish.Body {
	case BodyBatch, BodyList, BodySingle:
	default:
		bad("api.publish.body", "%q: want %s, %s or %s", a.Publish.Body, BodyBatch, BodyList, BodySingle)
	}
	for _, c := range a.Publish.Success {
		if c < 200 || c > 299 {
			bad("api.publish.success", "%d: an acknowledgement is a 2xx status", c)
		}
	}
	for field, v := range map[string]string{
		"api.stats.received": a.Stats.Received, "api.stats.unique_processed": a.Stats.UniqueProcessed,
		"api.stats.duplicated_dropped": a.Stats.DuplicatedDropped, "api.stats.queue_depth": a.Stats.QueueDepth,
		"api.stats.pending": a.Stats.Pending, "api.stats.dead_lettered": a.Stats.DeadLettered,
		"api.events.next_cursor": a.Events.NextCursor,
	} {
		if v != "" && !fieldRe.MatchString(v) {
			bad(field, "%q: want a field name or a dotted path (a.b)", v)
		}
	}
	if a.Stats.Quiet <= 0 {
		bad("api.stats.quiet", "must be > 0")
	}
	if a.Stats.Stall <= 0 {
		bad("api.stats.stall", "must be > 0")
	}
	switch a.Events.Shape {
	case EventsObject:
		if !identRe.MatchString(a.Events.Field) {
			bad("api.events.field", "%q: want the key of the events list", a.Events.Field)
		}
	case EventsList:
		if a.Events.Field != "" {
			bad("api.events.field", "a bare list has no field")
		}
	default:
		bad("api.events.shape", "%q: want %s or %s", a.Events.Shape, EventsObject, EventsList)
	}
	if (a.Events.Cursor == "") != (a.Events.NextCursor == "") {
		bad("api.events.cursor", "cursor and next_cursor go together")
	}
	if a.Events.MaxLimit < 0 {
		bad("api.events.max_limit", "must be >= 0")
	}
	if l := s.Backlog.RedisList; l != "" && strings.ContainsAny(l, " \r\n") {
		bad("backlog.redis_list", "%q: a Redis key without spaces", l)
	}
	rb := s.ReadBack
	if rb.Table != "" {
		for field, v := range map[string]string{"readback.table": rb.Table, "readback.topic": rb.Topic, "readback.event_id": rb.EventID} {
			if !identRe.MatchString(v) {
				bad(field, "%q: want an SQL identifier", v)
			}
		}
		for field, v := range map[string]string{"readback.committed_at": rb.CommittedAt, "readback.received_at": rb.ReceivedAt} {
			if v != "" && !identRe.MatchString(v) {
				bad(field, "%q: want an SQL identifier", v)
			}
		}
		if rb.ReceivedAt != "" && rb.CommittedAt == "" {
			bad("readback.received_at", "needs committed_at")
		}
	} else if rb.Topic != "" || rb.EventID != "" || rb.CommittedAt != "" || rb.ReceivedAt != "" {
		bad("readback.table", "missing (the columns name a table)")
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// checkVars checks that v uses only ${VAR} of the contract.
func checkVars(v string) error {
	var unknown []string
	os.Expand(v, func(k string) string {
		if !slices.Contains(Vars, k) {
			unknown = append(unknown, k)
		}
		return ""
	})
	if len(unknown) > 0 {
		return fmt.Errorf("${%s}: not a variable of the contract (%s)", unknown[0], strings.Join(Vars, ", "))
	}
	return nil
}

// splitCommand splits a command line like a shell (quotes, backslashes),
// checking its ${VAR} references.
func splitCommand(cmd string) ([]string, error) {
	if strings.TrimSpace(cmd) == "" {
		return nil, errors.New("empty command")
	}
	if err := checkVars(cmd); err != nil {
		return nil, err
	}
	argv, err := shlex.Split(cmd)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", cmd, err)
	}
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	return argv, nil
}

// Expand replaces ${VAR} in s with vars[VAR].
func Expand(s string, vars map[string]string) string {
	return os.Expand(s, func(k string) string { return vars[k] })
}

// Argv is command split into arguments, each with ${VAR} replaced from vars.
func Argv(command string, vars map[string]string) ([]string, error) {
	argv, err := splitCommand(command)
	if err != nil {
		return nil, err
	}
	for i := range argv {
		argv[i] = Expand(argv[i], vars)
	}
	return argv, nil
}

// ProcessList is the subject's processes: Processes, or one named
// "service" running Run.Command.
func (s *Subject) ProcessList() []Process {
	if len(s.Processes) > 0 {
		return s.Processes
	}
	return []Process{{Name: "service", Command: s.Run.Command, HTTP: true}}
}

// Environment is the extra environment of an instance: Run.Env with ${VAR}
// replaced from vars, as KEY=VALUE in key order.
func (s *Subject) Environment(vars map[string]string) []string {
	keys := make([]string, 0, len(s.Run.Env))
	for k := range s.Run.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + Expand(s.Run.Env[k], vars)
	}
	return out
}
