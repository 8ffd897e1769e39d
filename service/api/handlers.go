package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

type publishResponse struct {
	Status      string `json:"status"`
	Message     string `json:"message"`
	EventsCount int    `json:"events_count"`
}

// publish validates the whole request, appends it to the stream as one
// entry, and answers 200 only once Redis has confirmed the entry. It waits
// at most PublishTimeout for that: then it answers 503, "rejected" when the
// entry was never sent, "unknown" when Redis may have it.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status := s.publishStatus(w, r, start)
	s.m.PublishRequests.WithLabelValues(strconv.Itoa(status)).Inc()
	s.m.PublishLatency.Observe(time.Since(start).Seconds())
}

func (s *Server) publishStatus(w http.ResponseWriter, r *http.Request, start time.Time) int {
	switch {
	case s.draining.Load():
		return s.writeError(w, errDraining)
	case !s.authorized(r):
		return s.writeError(w, errUnauthorized)
	case !s.opts.ContentTypeOK(r.Header.Get("Content-Type")):
		return s.writeError(w, &statusError{http.StatusUnsupportedMediaType,
			fmt.Sprintf("content type %q is not JSON: send application/json", event.CutLoc(r.Header.Get("Content-Type")))})
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return s.writeError(w, err)
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	body, err := readBody(w, r, (*bp)[:0], s.opts.MaxBodyBytes)
	*bp = body
	if err != nil {
		return s.writeError(w, err)
	}
	evs, err := s.opts.Decode(body, s.limits)
	if err != nil {
		return s.writeError(w, err)
	}
	if len(evs) > 0 {
		ep := s.bufs.Get().(*[]byte)
		defer s.bufs.Put(ep)
		*ep = event.AppendBatch((*ep)[:0], evs)
		if s.overQueueBytes(len(*ep)) {
			return s.writeError(w, errQueueBytes)
		}
		ctx := r.Context()
		if t := s.opts.PublishTimeout; t > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
		m := queue.Message{Token: queue.NewToken(), ReceivedAt: start, Count: len(evs), Body: *ep}
		if key != "" {
			m.Idem = queue.Idem{Key: s.q.IdemKey(s.scope(r), key), Sum: queue.Fingerprint(*ep)}
		}
		_, err = s.q.Append(ctx, m)
		var rep *queue.ReplayError
		switch {
		case errors.As(err, &rep):
			// Appended before (queued or applied): acknowledged again as
			// the first time, and nothing counted twice.
			w.Header().Set(ReplayedHeader, "true")
			writeJSON(w, http.StatusOK, publishResponse{
				Status: "success", Message: fmt.Sprintf("Published %d events", rep.Count), EventsCount: rep.Count,
			})
			return http.StatusOK
		case errors.Is(err, queue.ErrIdemConflict):
			return s.writeError(w, badHeader(IdempotencyKeyHeader,
				"Idempotency-Key was already used for a request with different events: use a new key for a new request",
				"idempotency_conflict"))
		case err != nil:
			return s.writeError(w, err)
		}
		s.appended.Add(int64(len(*ep)))
		s.m.EventsAccepted.Add(float64(len(evs)))
	}
	writePublished(w, len(evs))
	return http.StatusOK
}

// writePublished writes the acknowledgement of n events: the same bytes
// writeJSON writes for publishResponse{"success", "Published n events", n}
// (TestWritePublishedIsWriteJSON), built without encoding/json and
// fmt, which took about a fifth of the handler's CPU under single-event
// load (pprof of BenchmarkPublishToCommit/1-per-request).
func writePublished(w http.ResponseWriter, n int) {
	b := make([]byte, 0, 96)
	b = append(b, `{"status":"success","message":"Published `...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, ` events","events_count":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// Idempotency keys.
const (
	// IdempotencyKeyHeader is the optional request header of /publish:
	// a request whose key was already appended (queued or applied) within
	// IDEMPOTENCY_TTL is acknowledged again and not appended twice.
	IdempotencyKeyHeader = "Idempotency-Key"
	// ReplayedHeader marks the answer to such a repeated request.
	ReplayedHeader = "Idempotent-Replayed"
	// MaxIdempotencyKey is the longest key accepted, in bytes.
	MaxIdempotencyKey = 255
)

// idempotencyKey returns the request's Idempotency-Key ("" when it has
// none), or a 422 naming the header when it is empty, repeated, longer
// than MaxIdempotencyKey or holds other than visible ASCII (0x21-0x7E).
func idempotencyKey(r *http.Request) (string, error) {
	vs, ok := r.Header[IdempotencyKeyHeader]
	if !ok {
		return "", nil
	}
	bad := func(msg string) (string, error) {
		return "", badHeader(IdempotencyKeyHeader, msg, "value_error")
	}
	if len(vs) != 1 {
		return bad("Idempotency-Key must be sent once")
	}
	k := vs[0]
	if k == "" || len(k) > MaxIdempotencyKey {
		return bad(fmt.Sprintf("Idempotency-Key must be 1 to %d bytes, got %d", MaxIdempotencyKey, len(k)))
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return bad(fmt.Sprintf("Idempotency-Key must be visible ASCII (0x21-0x7E); byte %d is 0x%02x", i, k[i]))
		}
	}
	return k, nil
}

// scope is what idempotency keys are scoped to: the bearer token of an
// authorized request when API_TOKEN is set, else nothing (one scope).
func (s *Server) scope(r *http.Request) string {
	if s.opts.APIToken == "" {
		return ""
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return "token:" + strings.TrimSpace(tok)
}

// readBody reads the whole body into buf, refusing more than limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, buf []byte, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return buf, &event.RequestError{Kind: event.TooLarge,
			Msg: fmt.Sprintf("body of %d bytes is over MAX_BODY_BYTES (%d)", r.ContentLength, limit)}
	}
	b := bytes.NewBuffer(buf)
	_, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return b.Bytes(), &event.RequestError{Kind: event.TooLarge,
			Msg: fmt.Sprintf("body is over MAX_BODY_BYTES (%d)", limit)}
	case err != nil:
		return b.Bytes(), &event.RequestError{Kind: event.Malformed, Msg: "cannot read body: " + err.Error()}
	}
	return b.Bytes(), nil
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badQuery(name, "Input should be a valid integer", "int_parsing")
	}
	if n < lo || n > hi {
		return 0, badQuery(name, fmt.Sprintf("Input should be between %d and %d", lo, hi), "int_range")
	}
	return n, nil
}

type eventsResponse struct {
	Count      int64               `json:"count"`
	Events     []store.StoredEvent `json:"events"`
	NextCursor *string             `json:"next_cursor"`
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := store.EventsQuery{MaxBytes: s.opts.PageBytes}
	var err error
	if q.Limit, err = intParam(r, "limit", 1000, 1, 10_000); err != nil {
		s.writeError(w, err)
		return
	}
	vals := r.URL.Query()
	if vals.Has("topic") {
		q.Topic, q.HasTopic = vals.Get("topic"), true
	}
	if c := vals.Get("cursor"); c != "" {
		cur, err := store.ParseCursor(c)
		if err != nil {
			s.writeError(w, badQuery("cursor", "Cursor should be one a previous page returned as next_cursor", "value_error"))
			return
		}
		q.After = &cur
	}
	release, ok := s.readSlot(w, r)
	if !ok {
		return
	}
	defer release()
	page, err := s.st.Events(r.Context(), q)
	if err != nil {
		s.writeError(w, err)
		return
	}
	resp := eventsResponse{Count: page.Count, Events: page.Events}
	if resp.Events == nil {
		resp.Events = []store.StoredEvent{}
	}
	if page.Next != nil {
		c := page.Next.String()
		resp.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, resp)
}

type statsResponse struct {
	Received          int64    `json:"received"`
	UniqueProcessed   int64    `json:"unique_processed"`
	DuplicatedDropped int64    `json:"duplicated_dropped"`
	Topics            []string `json:"topics"`       // the first STATS_MAX_TOPICS by name
	TopicsCount       int64    `json:"topics_count"` // all of them
	Uptime            int64    `json:"uptime"`
	QueueDepth        int64    `json:"queue_depth"`
	Pending           int64    `json:"pending"`
	DeadLettered      int64    `json:"dead_lettered"`
	Workers           int      `json:"workers"`
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	// The queue is read before the counters: an entry is acknowledged only
	// after its batch committed, so a reader that sees queue_depth 0 also
	// sees every count of what was drained (read the other way round, a
	// batch committed and acknowledged between the two reads would show an
	// empty queue with counts that miss it).
	d, err := s.q.Depth(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	c, err := s.st.Counts(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	if c.Topics == nil {
		c.Topics = []string{}
	}
	writeJSON(w, http.StatusOK, statsResponse{
		Received: c.Received(), UniqueProcessed: c.UniqueProcessed, DuplicatedDropped: c.DuplicatedDropped,
		Topics: c.Topics, TopicsCount: c.TopicsCount, Uptime: int64(time.Since(s.started) / time.Second),
		QueueDepth: d.Backlog, Pending: d.Pending, DeadLettered: d.DeadLettered, Workers: s.opts.Workers,
	})
}

type auditResponse struct {
	Count     int64            `json:"count"`
	AuditLogs []store.AuditLog `json:"audit_logs"`
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	vals := r.URL.Query()
	q := store.AuditQuery{Action: vals.Get("action")}
	if q.Action != "" && !slices.Contains(store.Actions, q.Action) {
		s.writeError(w, badQuery("action", "Input should be one of RECEIVED, QUEUED, PROCESSED, DROPPED, FAILED", "enum"))
		return
	}
	if vals.Has("topic") {
		q.Topic, q.HasTopic = vals.Get("topic"), true
	}
	if vals.Has("event_id") {
		q.EventID, q.HasEventID = vals.Get("event_id"), true
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := vals.Get(p.name); v != "" {
			t, err := event.ParseTimestamp(v)
			if err != nil {
				s.writeError(w, badQuery(p.name, "Input should be an ISO 8601 datetime: "+err.Error(), "datetime_parsing"))
				return
			}
			*p.dst = &t
		}
	}
	var err error
	if q.Limit, err = intParam(r, "limit", 100, 1, 1000); err != nil {
		s.writeError(w, err)
		return
	}
	release, ok := s.readSlot(w, r)
	if !ok {
		return
	}
	defer release()
	count, logs, err := s.st.Audit(r.Context(), q)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, auditResponse{Count: count, AuditLogs: logs})
}

type summaryResponse struct {
	TotalReceived  int64                         `json:"total_received"`
	TotalQueued    int64                         `json:"total_queued"`
	TotalProcessed int64                         `json:"total_processed"`
	TotalDropped   int64                         `json:"total_dropped"`
	TotalFailed    int64                         `json:"total_failed"`
	ByTopic        map[string]*store.AuditCounts `json:"by_topic"`  // the STATS_MAX_TOPICS busiest
	ByWorker       map[string]*store.AuditCounts `json:"by_worker"` // the STATS_MAX_TOPICS busiest
	TopicsCount    int64                         `json:"topics_count"`
	WorkersCount   int64                         `json:"workers_count"`
}

func (s *Server) auditSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.st.AuditSummary(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	t := sum.Total
	writeJSON(w, http.StatusOK, summaryResponse{
		TotalReceived: t.Received, TotalQueued: t.Queued, TotalProcessed: t.Processed,
		TotalDropped: t.Dropped, TotalFailed: t.Failed, ByTopic: sum.ByTopic, ByWorker: sum.ByWorker,
		TopicsCount: sum.Topics, WorkersCount: sum.Workers,
	})
}

// ready answers 200 only when both dependencies answer, the schema is
// current and the workers can apply (Options.Blocked), and never while
// draining.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	notReady := func(reason string) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": reason})
	}
	if s.draining.Load() {
		notReady("draining")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// The reasons name the dependency only; its address, user and error
	// go to the log.
	if err := s.q.Ping(ctx); err != nil {
		s.log.Warn("not ready: redis", "err", err)
		notReady("redis unavailable")
		return
	}
	if err := s.st.Ping(ctx); err != nil {
		s.log.Warn("not ready: postgres", "err", err)
		notReady("postgres unavailable")
		return
	}
	if s.opts.Blocked != nil {
		if why := s.opts.Blocked(); why != "" {
			notReady(why)
			return
		}
	}
	if !s.migrated.Load() {
		v, err := s.st.SchemaVersion(ctx)
		if err != nil || v < store.LatestVersion() {
			notReady(fmt.Sprintf("schema at version %d, want %d", v, store.LatestVersion()))
			return
		}
		s.migrated.Store(true)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
