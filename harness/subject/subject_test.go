package subject

import (
	"strings"
	"testing"
)

// The files under subjects/ must parse, and each must say what it says.
func TestSubjectFiles(t *testing.T) {
	names, err := Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{Default, "original", "uas-sister-a"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Fatalf("subjects/%s.yaml missing (have %v)", want, names)
		}
	}
	for _, n := range names {
		s, err := Load(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if s.Name != n {
			t.Errorf("subjects/%s.yaml names itself %q", n, s.Name)
		}
	}
	ours, _ := Load(Default)
	if !ours.Ours || ours.API.Stats.QueueDepth == "" || ours.API.AuditSummary == "" || ours.ReadBack.Table != "events" {
		t.Errorf("chronicleweaver.yaml: %+v", ours)
	}
	orig, _ := Load("original")
	if orig.Ours || orig.API.Stats.QueueDepth != "" || orig.Backlog.RedisList != "events" || orig.ReadBack.CommittedAt != "created_at" {
		t.Errorf("original.yaml: %+v", orig)
	}
	second, _ := Load("uas-sister-a")
	if second.API.Publish.Body != BodyList || second.API.Stats.DuplicatedDropped != "duplicate_dropped" || second.API.AuditSummary != "" {
		t.Errorf("uas-sister-a.yaml: %+v", second)
	}
	// Both foreign subjects list one package set: they share a base image.
	if a, b := orig.Image, second.Image; a.Suite != b.Suite || strings.Join(a.Packages, ",") != strings.Join(b.Packages, ",") {
		t.Errorf("the foreign subjects' package sets differ: %v / %v", a, b)
	}
}

// minimal is a foreign subject with only what is required; its run block
// comes last, so that a case can add run keys.
const minimal = `
name: demo
upstream: {repository: someone/demo}
image: {suite: trixie, packages: [python3-fastapi]}
run:
  command: python3 -m uvicorn main:app --port ${APP_PORT}
`

func TestParseDefaults(t *testing.T) {
	s, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	a := s.API
	if a.Publish.Path != "/publish" || a.Publish.Body != BodyBatch || len(a.Publish.Success) != 1 || a.Publish.Success[0] != 200 ||
		a.Ready != "auto" || a.Stats.Path != "/stats" || a.Events.Shape != EventsObject || a.Events.Field != "events" ||
		s.Image.User != "65534" || s.Run.ShutdownTimeout.D().Seconds() != 30 || a.Stats.Quiet.D().Seconds() != 5 {
		t.Errorf("defaults: %+v", s)
	}
	argv, err := Argv(s.Run.Command, map[string]string{"APP_PORT": "8123"})
	if err != nil || strings.Join(argv, " ") != "python3 -m uvicorn main:app --port 8123" {
		t.Errorf("argv %q, %v", argv, err)
	}
}

// Bad files are refused with the field named.
func TestParseErrors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"unknown key", minimal + "colour: red\n", "field colour not found"},
		{"unknown run key", minimal + "  colour: red\n", "field colour not found"},
		{"no command", "name: x\nupstream: {repository: a/b}\nimage: {suite: trixie, packages: [p1]}\n", "run.command: missing"},
		{"bad body", minimal + "api: {publish: {body: form}}\n", "api.publish.body"},
		{"non-2xx success", minimal + "api: {publish: {success: [302]}}\n", "api.publish.success"},
		{"unknown var", strings.Replace(minimal, "${APP_PORT}", "${PORT}", 1), "${PORT}: not a variable of the contract"},
		{"reserved env", minimal + "  env: {REDIS_URL: x}\n", "run.env.REDIS_URL"},
		{"bad stats path", minimal + "api: {stats: {received: 'a b'}}\n", "api.stats.received"},
		{"bad table", minimal + "readback: {table: 'x; drop table y'}\n", "readback.table"},
		{"columns without table", minimal + "readback: {committed_at: t}\n", "readback.table: missing"},
		{"bad package", strings.Replace(minimal, "python3-fastapi", "Python FastAPI", 1), "image.packages[0]"},
		{"no repository", strings.Replace(minimal, "upstream: {repository: someone/demo}", "", 1), "upstream.repository"},
		{"cursor alone", minimal + "api: {events: {cursor: c}}\n", "api.events.cursor"},
		{"run.dir outside", minimal + "  dir: ../x\n", "run.dir"},
		{"two http processes", "name: x\nupstream: {repository: a/b}\nimage: {suite: trixie, packages: [p1]}\nprocesses:\n  - {name: a, command: a, http: true}\n  - {name: b, command: b, http: true}\n", "exactly one process"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestEncoder(t *testing.T) {
	body := []byte(`{"events":[{"event_id":"a","topic":"t"},{"event_id":"b","topic":"t"}]}`)
	one := []byte(`{"events":[{"event_id":"a","topic":"t"}]}`)
	s, _ := Parse([]byte(minimal))
	if s.Encoder() != nil {
		t.Error("the contract's shape needs no encoder")
	}
	s.API.Publish.Body = BodyList
	got, err := s.Encoder()(body)
	if err != nil || string(got) != `[{"event_id":"a","topic":"t"},{"event_id":"b","topic":"t"}]` {
		t.Errorf("list: %s, %v", got, err)
	}
	s.API.Publish.Body = BodySingle
	if got, err = s.Encoder()(one); err != nil || string(got) != `{"event_id":"a","topic":"t"}` {
		t.Errorf("single: %s, %v", got, err)
	}
	if _, err = s.Encoder()(body); err == nil {
		t.Error("single: a two-event request must not encode")
	}
	if s.Gap(1) != "" || !strings.Contains(s.Gap(10), "one event per request") {
		t.Errorf("gaps: %q, %q", s.Gap(1), s.Gap(10))
	}
}

func TestDecodeStats(t *testing.T) {
	s, _ := Parse([]byte(minimal + `api:
  stats:
    received: uptime_stats.received_api
    unique_processed: uptime_stats.unique_processed
    duplicated_dropped: duplicate_dropped
    queue_depth: system_state.queue_depth
`))
	v, err := s.DecodeStats([]byte(`{"uptime_stats":{"received_api":10,"unique_processed":7},"duplicate_dropped":3.0,
		"system_state":{"queue_depth":2,"database_rows":7}}`))
	if err != nil {
		t.Fatal(err)
	}
	if v.Received != 10 || v.UniqueProcessed != 7 || v.DuplicatedDropped != 3 || v.QueueDepth != 2 {
		t.Errorf("values %+v", v)
	}
	if !v.Has.Counters() || v.Has.Queue() || !v.Has.QueueDepth || v.Has.Pending || v.Has.DeadLettered {
		t.Errorf("fields %+v", v.Has)
	}
	// A named field the answer lacks is absent, not zero-and-present.
	v, err = s.DecodeStats([]byte(`{"uptime_stats":{"received_api":1}}`))
	if err != nil || v.Has.UniqueProcessed || v.Has.Counters() {
		t.Errorf("missing field: %+v, %v", v.Has, err)
	}
	if _, err = s.DecodeStats([]byte(`{"uptime_stats":{"received_api":"many"}}`)); err == nil {
		t.Error("a string counter must be refused")
	}
	if _, err = s.DecodeStats([]byte(`{"uptime_stats":{"received_api":1.5}}`)); err == nil {
		t.Error("a fractional counter must be refused")
	}
}

func TestDecodeEvents(t *testing.T) {
	s, _ := Parse([]byte(minimal + "api: {events: {shape: list}}\n"))
	p, err := s.DecodeEvents([]byte(`[{"event_id":"a","topic":"t","payload":{}}]`))
	if err != nil || len(p.Events) != 1 || p.Events[0].EventID != "a" || p.Next != "" {
		t.Errorf("list: %+v, %v", p, err)
	}
	s, _ = Parse([]byte(minimal + "api: {events: {field: items, cursor: c, next_cursor: next}}\n"))
	p, err = s.DecodeEvents([]byte(`{"count":2,"items":[{"event_id":"a","topic":"t"},{"event_id":"b","topic":"u"}],"next":"xyz"}`))
	if err != nil || len(p.Events) != 2 || p.Events[1].Topic != "u" || p.Next != "xyz" {
		t.Errorf("items: %+v, %v", p, err)
	}
	if _, err = s.DecodeEvents([]byte(`{"count":0,"events":[]}`)); err == nil {
		t.Error("an answer without the named field must be refused")
	}
}

func TestEnvironment(t *testing.T) {
	s, err := Parse([]byte(minimal + "  env: {WORKERS: '${WORKER_COUNT}', BROKER_URL: '${REDIS_URL}', QUEUE_NAME: logq}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(s.Environment(map[string]string{"WORKER_COUNT": "4", "REDIS_URL": "redis://h:1/0"}), " ")
	if got != "BROKER_URL=redis://h:1/0 QUEUE_NAME=logq WORKERS=4" {
		t.Errorf("environment %q", got)
	}
}
