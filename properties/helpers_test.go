package properties

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// opTimeout bounds one call to the environment or the service; drainTimeout
// bounds a drain.
const (
	opTimeout    = 60 * time.Second
	drainTimeout = 90 * time.Second
)

// --- key namespaces ---

// space is the key namespace of one rapid check: topics id+"-t<k>", event
// ids id+"-e<n>", so that checks sharing an environment never see each
// other's events.
type space struct{ id string }

func newSpace(kind string) space {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return space{id: kind + "-" + hex.EncodeToString(b[:])}
}

func (s space) topic(k int) string   { return s.id + "-t" + strconv.Itoa(k) }
func (s space) eventID(n int) string { return s.id + "-e" + strconv.Itoa(n) }
func (s space) key(k, n int) history.Key {
	return history.Key{Topic: s.topic(k), ID: s.eventID(n)}
}

// idSharing is the shared_ids dimension of harness/gen in a property: it
// remembers which event ids are used under which topics and, when on,
// makes about one new key in sharedOneIn reuse an event id already used
// under another topic (drawn, so rapid shrinks a failure to the sharing it
// needs). Off, every new key has an event id of its own.
type idSharing struct {
	on     bool
	ids    []string                   // distinct ids, in first-use order
	topics map[string]map[string]bool // id -> topics it is used under
}

// sharedOneIn: one new key in sharedOneIn reuses an id (gen.DefaultSharedIDs).
const sharedOneIn = 10

func newIDSharing(on bool) *idSharing {
	return &idSharing{on: on, topics: map[string]map[string]bool{}}
}

// add records key k.
func (s *idSharing) add(k history.Key) {
	if s.topics[k.ID] == nil {
		s.topics[k.ID] = map[string]bool{}
		s.ids = append(s.ids, k.ID)
	}
	s.topics[k.ID][k.Topic] = true
}

// newKey returns a new key under topic: own (an id nothing uses yet) or,
// when sharing is on and rapid draws it, an earlier key's id that topic
// does not have yet. It records the key.
func (s *idSharing) newKey(t *rapid.T, topic, own string) history.Key {
	k := history.Key{Topic: topic, ID: own}
	if s.on && rapid.IntRange(0, sharedOneIn-1).Draw(t, "shares an event id?") == sharedOneIn-1 {
		var cand []string
		for _, id := range s.ids {
			if !s.topics[id][topic] {
				cand = append(cand, id)
			}
		}
		if len(cand) > 0 {
			k.ID = rapid.SampledFrom(cand).Draw(t, "shared event id")
		}
	}
	s.add(k)
	return k
}

// shared counts the ids used under more than one topic.
func (s *idSharing) shared() int {
	n := 0
	for _, ts := range s.topics {
		if len(ts) > 1 {
			n++
		}
	}
	return n
}

// idPrefix is the prefix of every event id of the namespace.
func (s space) idPrefix() string { return s.id + "-" }

// short writes a key without its namespace: "t0/e3".
func (s space) short(k history.Key) string {
	return strings.TrimPrefix(k.Topic, s.id+"-") + "/" + strings.TrimPrefix(k.ID, s.id+"-")
}

// shortKeys writes keys compactly, at most max of them.
func (s space) shortKeys(keys []history.Key, limit int) string {
	parts := make([]string, 0, min(len(keys), limit)+1)
	for i, k := range keys {
		if i == limit {
			parts = append(parts, fmt.Sprintf("+%d more", len(keys)-limit))
			break
		}
		parts = append(parts, s.short(k))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// --- events ---

// ev is one event as sent; Timestamp and Payload are kept as sent.
type ev struct {
	EventID   string          `json:"event_id"`
	Topic     string          `json:"topic"`
	Source    string          `json:"source"`
	Timestamp string          `json:"timestamp"`
	Payload   json.RawMessage `json:"payload"`
}

func (e ev) key() history.Key { return history.Key{Topic: e.Topic, ID: e.EventID} }

func keysOf(evs []ev) []history.Key {
	ks := make([]history.Key, len(evs))
	for i, e := range evs {
		ks[i] = e.key()
	}
	return ks
}

// publishBody is the JSON body of POST /publish for evs.
func publishBody(evs []ev) []byte {
	if evs == nil {
		evs = []ev{}
	}
	b, err := json.Marshal(struct {
		Events []ev `json:"events"`
	}{evs})
	if err != nil {
		panic(err) // every field is a string or valid JSON
	}
	return b
}

// baseTime is the centre of the drawn event timestamps.
var baseTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newEvent makes a valid event of key k, copy number seq, at ts; its
// payload records seq, so each copy is recognisable.
func newEvent(k history.Key, seq int, ts time.Time, msg string) ev {
	stamp := ts.UTC().Format(time.RFC3339Nano)
	p, err := json.Marshal(map[string]any{"message": msg, "timestamp": stamp, "seq": seq})
	if err != nil {
		panic(err)
	}
	return ev{EventID: k.ID, Topic: k.Topic, Source: "properties", Timestamp: stamp, Payload: p}
}

// drawTime draws an event time near baseTime at microsecond resolution
// (what PostgreSQL keeps): small offsets are likely, so ties happen.
func drawTime(t *rapid.T, label string) time.Time {
	us := rapid.Int64Range(-30*60*1_000_000, 30*60*1_000_000).Draw(t, label)
	return baseTime.Add(time.Duration(us) * time.Microsecond)
}

// zones are the offsets timestamps are written in ("" = no offset: UTC).
var zones = []string{"Z", "", "+05:30", "-08:00"}

// formatTime writes ts in zone with digits fraction digits (0, 3 or 6,
// truncating ts, which the caller must then use).
func formatTime(ts time.Time, zone string, digits int) (string, time.Time) {
	ts = ts.Truncate(time.Duration(pow10(6-digits)) * time.Microsecond)
	layout := "2006-01-02T15:04:05"
	if digits > 0 {
		layout += "." + strings.Repeat("0", digits)
	}
	switch zone {
	case "Z":
		return ts.UTC().Format(layout) + "Z", ts
	case "":
		return ts.UTC().Format(layout), ts
	}
	sign := 1
	if zone[0] == '-' {
		sign = -1
	}
	h, _ := strconv.Atoi(zone[1:3])
	m, _ := strconv.Atoi(zone[4:6])
	loc := time.FixedZone(zone, sign*(h*3600+m*60))
	return ts.In(loc).Format(layout + "-07:00"), ts
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// textGen draws short messages of letters, digits, punctuation, symbols and
// spaces from all of Unicode (never NUL nor a surrogate: those are invalid).
var textGen = rapid.StringOfN(rapid.RuneFrom(nil, unicode.L, unicode.N, unicode.P, unicode.S, unicode.Zs), 0, 16, -1)

// --- publishing ---

// publisher sends requests to one target and records them in a history.
type publisher struct {
	cl  *client.Client
	rec *history.Recorder
}

func newPublisher(e env.Env) *publisher {
	rec, _ := history.NewRecorder("") // in memory: cannot fail
	return &publisher{cl: client.New(e.Targets()[0], ""), rec: rec}
}

// publish sends evs as one request from process and records it.
func (p *publisher) publish(process int, evs []ev) (int, history.Type, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	inv := p.rec.Invoke(process, history.FPublish, keysOf(evs), "")
	status, typ, err := p.cl.Publish(ctx, publishBody(evs))
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	p.rec.Complete(inv, typ, time.Now(), status, msg, "")
	return status, typ, err
}

// outcome writes a publish outcome compactly: "ok", "fail 422", "unknown".
func outcome(status int, typ history.Type) string {
	switch {
	case typ == history.OK:
		return "ok"
	case typ == history.Info && status != 0:
		return fmt.Sprintf("unknown %d", status)
	case typ == history.Info:
		return "unknown"
	case status != 0:
		return fmt.Sprintf("fail %d", status)
	}
	return "refused"
}

// --- reading back ---

// snapshot is what the checker compares against: /stats and /audit/summary.
type snapshot struct {
	stats checker.Stats
	audit *checker.Audit
}

// settled reads the stats of a drained target: at once when the queue is
// already empty, else after WaitDrained.
func settled(cl *client.Client) (snapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	s, err := cl.Stats(ctx)
	if err != nil || s.QueueDepth != 0 || s.Pending != 0 {
		if s, _, err = cl.WaitDrained(ctx); err != nil {
			return snapshot{}, err
		}
	}
	var snap snapshot
	snap.stats = s
	a, err := cl.AuditSummary(ctx)
	if err != nil {
		return snap, err
	}
	snap.audit = &a
	return snap, nil
}

// readBack waits for the queue to drain and reads what the checker needs:
// stats and audit (after), and the namespace's stored keys from PostgreSQL.
// A drain that does not finish is not an error: Readback.Drained says so.
func readBack(e env.Env, cl *client.Client, sp space, before snapshot) (checker.Readback, error) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	rb := checker.Readback{Before: before.stats, AuditBefore: before.audit}
	after, _, err := cl.WaitDrained(ctx)
	rb.Drained = err == nil
	if err != nil {
		if s, serr := cl.Stats(ctx); serr == nil {
			after = s
		}
	}
	rb.After = after
	if a, err := cl.AuditSummary(ctx); err == nil {
		rb.AuditAfter = &a
	}
	stored, err := client.StoredKeysDB(ctx, e.DatabaseURL(), sp.idPrefix())
	if err != nil {
		return rb, err
	}
	rb.Stored = stored
	return rb, nil
}

// describe writes a checker result for the log.
func describe(r checker.Result, sp space) string {
	var b strings.Builder
	fmt.Fprintf(&b, "valid %v: attempted %d, acknowledged %d, stored %d, lost %d, duplicated %d, unexpected %d, recovered %d; "+
		"requests ok %d fail %d unknown %d; copies acked %d unknown %d; stats delta received %d unique %d dropped %d",
		r.Valid, r.Attempted, r.Acknowledged, r.Stored, r.Lost, r.Duplicated, r.Unexpected, r.Recovered,
		r.Requests.OK, r.Requests.Fail, r.Requests.Info, r.AcknowledgedCopies, r.UnknownCopies,
		r.Stats.Received, r.Stats.UniqueProcessed, r.Stats.DuplicatedDropped)
	for _, v := range r.Violations {
		b.WriteString("\n  violation: " + v)
	}
	if len(r.Examples) > 0 {
		b.WriteString("\n  examples: " + sp.shortKeys(r.Examples, 10))
	}
	return b.String()
}

// violationPrefix starts the log line of a violation.
const violationPrefix = "VIOLATION "

// violated logs what went wrong and fails the check with the fixed message
// what. The message does not carry the details (counts, keys), so that
// rapid's shrinker, which requires a smaller case to fail with the same
// message, can shrink a failure whose figures change with timing.
func violated(t *rapid.T, what, format string, args ...any) {
	t.Helper()
	logf(t, violationPrefix+"%s: %s", what, fmt.Sprintf(format, args...))
	t.Fatalf("%s", what)
}

// must fails the check when the harness itself could not do its part.
func must(t *rapid.T, err error, what string) {
	t.Helper()
	if err != nil {
		logf(t, "HARNESS ERROR %s: %v", what, err)
		t.Fatalf("%s: %v", what, err)
	}
}

// --- GET helpers ---

func getJSON(cl *client.Client, path string, q url.Values, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	u := cl.Base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := cl.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// auditCount is the number of audit entries of one key and action.
func auditCount(cl *client.Client, k history.Key, action string) (int64, error) {
	var a struct {
		Count int64 `json:"count"`
	}
	err := getJSON(cl, "/audit", url.Values{"topic": {k.Topic}, "event_id": {k.ID}, "action": {action}, "limit": {"1"}}, &a)
	return a.Count, err
}

// storedEvent is one event of GET /events.
type storedEvent struct {
	EventID   string          `json:"event_id"`
	Topic     string          `json:"topic"`
	Source    string          `json:"source"`
	Payload   json.RawMessage `json:"payload"`
	Timestamp time.Time       `json:"timestamp"`
}

type eventsPage struct {
	Count      int64         `json:"count"`
	Events     []storedEvent `json:"events"`
	NextCursor *string       `json:"next_cursor"`
}

func getEvents(cl *client.Client, topic string, limit int, cursor string) (eventsPage, error) {
	q := url.Values{"topic": {topic}, "limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var p eventsPage
	err := getJSON(cl, "/events", q, &p)
	return p, err
}

// sameJSON reports whether two JSON texts hold the same value (objects
// compared as maps, numbers as their decimal text).
func sameJSON(a, b []byte) bool {
	va, errA := decodeJSON(a)
	vb, errB := decodeJSON(b)
	if errA != nil || errB != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[history.Key]V) []history.Key {
	ks := make([]history.Key, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Topic != ks[j].Topic {
			return ks[i].Topic < ks[j].Topic
		}
		return ks[i].ID < ks[j].ID
	})
	return ks
}
