// Package api is the service's HTTP edge: routing, request parsing, auth, and
// the one place where errors become status codes.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/metrics"
	"github.com/chronicleweaver/chronicleweaver/service/openapi"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// Options configures the HTTP edge.
type Options struct {
	MaxBatch     int
	MaxBodyBytes int64
	APIToken     string        // empty: no auth on /publish
	RetryAfter   time.Duration // hint sent with 503
	Workers      int           // reported by /stats
	// PublishTimeout bounds the wait for Redis to take and confirm a
	// publish (PUBLISH_TIMEOUT); 0: only the client's patience bounds it.
	PublishTimeout time.Duration
	// Decode decodes and validates a /publish body; nil: event.DecodeRequest.
	// It is the seam a planted bug of the validator plugs into
	// (service/planted).
	Decode event.Decoder
	// Limits are the request limits of /publish; zero fields take the
	// defaults (MaxBatch comes from the field above).
	Limits event.Limits
	// CheckQuery checks the query string of every GET of data (/events,
	// /stats, /audit, /audit/summary) before it runs; nil means
	// CheckQuery. (A seam: a planted bug may hand in a check that lets
	// everything through.)
	CheckQuery func(rawQuery string) error
	// ContentTypeOK says whether /publish takes a request with this
	// Content-Type; nil means application/json or application/*+json only.
	// (A seam, as CheckQuery.)
	ContentTypeOK func(ct string) bool
	// Headers wraps every handler with the headers of every answer; nil
	// means Nosniff. (A seam, as CheckQuery.)
	Headers func(http.Handler) http.Handler
	// PageBytes bounds one /events page, about (EVENTS_PAGE_BYTES); 0:
	// rows alone bound it.
	PageBytes int
	// ReadConcurrency bounds the reads of data (/events, /stats, /audit,
	// /audit/summary) served at once (READ_CONCURRENCY), so that reads
	// cannot take PostgreSQL's connections from the workers; a read that
	// waits ReadWait for its turn is refused with 503. 0: no bound.
	ReadConcurrency int
	ReadWait        time.Duration
	// QueueMaxBytes refuses publishes (503) while Redis holds this many
	// bytes (QUEUE_MAX_BYTES; see SetRedisMemory); 0: no bound.
	QueueMaxBytes int64
	// Blocked, when set, says why the workers cannot apply anything now
	// ("" when they can: see worker.Pool.Blocked); /ready answers 503 with
	// that reason meanwhile.
	Blocked func() string
}

// Queue is what the HTTP edge needs of the queue: *queue.Queue. Append is
// the publish path's one write, and the seam a planted bug of the publish
// path plugs into (service/planted).
type Queue interface {
	Append(ctx context.Context, m queue.Message) (string, error)
	IdemKey(scope, key string) string
	Depth(ctx context.Context) (queue.Depth, error)
	Ping(ctx context.Context) error
}

var _ Queue = (*queue.Queue)(nil)

// Server serves the HTTP API.
type Server struct {
	opts    Options
	q       Queue
	st      *store.Store
	m       *metrics.Metrics
	log     *slog.Logger
	limits  event.Limits
	started time.Time

	checkQuery func(rawQuery string) error
	reads      chan struct{} // one token per read in progress; nil: no bound

	// redisBytes is Redis's memory as last polled; appended counts the
	// bytes this instance appended since (both reset by SetRedisMemory).
	redisBytes atomic.Int64
	appended   atomic.Int64

	draining atomic.Bool
	migrated atomic.Bool // set once the schema is seen at the latest version
	bufs     sync.Pool   // *[]byte scratch buffers for request bodies and entries
}

// New returns a Server.
func New(opts Options, q Queue, st *store.Store, m *metrics.Metrics, log *slog.Logger) *Server {
	lim := opts.Limits
	lim.MaxBatch = opts.MaxBatch
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Decode == nil {
		opts.Decode = event.DecodeRequest
	}
	check := opts.CheckQuery
	if check == nil {
		check = CheckQuery
	}
	if opts.ContentTypeOK == nil {
		opts.ContentTypeOK = jsonContentType
	}
	s := &Server{opts: opts, q: q, st: st, m: m, log: log, limits: lim, started: time.Now(), checkQuery: check,
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}}
	if opts.ReadConcurrency > 0 {
		s.reads = make(chan struct{}, opts.ReadConcurrency)
		if s.opts.ReadWait <= 0 {
			s.opts.ReadWait = 2 * time.Second
		}
	}
	return s
}

// SetRedisMemory records Redis's memory use (the caller polls it); until
// the next call, what this instance appends is added to it.
func (s *Server) SetRedisMemory(n int64) {
	s.redisBytes.Store(n)
	s.appended.Store(0)
}

// overQueueBytes reports whether appending n more bytes would pass
// QUEUE_MAX_BYTES.
func (s *Server) overQueueBytes(n int) bool {
	lim := s.opts.QueueMaxBytes
	return lim > 0 && s.redisBytes.Load()+s.appended.Load()+int64(n) > lim
}

// Drain makes /ready answer 503 and /publish refuse new requests.
func (s *Server) Drain() { s.draining.Store(true) }

// Handler returns the router.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	headers := s.opts.Headers
	if headers == nil {
		headers = Nosniff
	}
	r.Use(s.recoverer, headers)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, detail("Not Found"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, detail("Method Not Allowed"))
	})
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"message": "ChronicleWeaver aggregator is running"})
	})
	r.Post("/publish", s.publish)
	r.Get("/events", s.checkedQuery(s.events)) // takes its read slot once parsed
	r.Get("/stats", s.checkedQuery(s.limitedRead(s.stats)))
	r.Get("/audit", s.checkedQuery(s.audit)) // as /events
	r.Get("/audit/summary", s.checkedQuery(s.limitedRead(s.auditSummary)))
	r.Get("/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	})
	r.Get("/ready", s.ready)
	r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Spec())
	})
	r.Get("/docs", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(openapi.Docs())
	})
	r.Method(http.MethodGet, "/metrics", s.m.Handler())
	return r
}

// Routes lists the method and pattern of every route, for the test that
// checks each one is documented.
func (s *Server) Routes() ([][2]string, error) {
	var out [][2]string
	err := chi.Walk(s.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, [2]string{method, route})
		return nil
	})
	return out, err
}

// Nosniff tells browsers to take every answer's Content-Type as sent.
func Nosniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeJSON(w, http.StatusInternalServerError, detail("internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// statusError is an error with the status it maps to.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

var (
	errUnauthorized = &statusError{http.StatusUnauthorized, "missing or wrong bearer token"}
	errDraining     = &statusError{http.StatusServiceUnavailable, "shutting down: publish to another instance or retry"}
	errBusyReads    = &statusError{http.StatusServiceUnavailable, "too many reads in progress (READ_CONCURRENCY): retry later"}
	errQueueBytes   = &statusError{http.StatusServiceUnavailable, "Redis holds QUEUE_MAX_BYTES: retry later"}
)

// limitedRead serves next within ReadConcurrency (see readSlot).
func (s *Server) limitedRead(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		release, ok := s.readSlot(w, r)
		if !ok {
			return
		}
		defer release()
		next(w, r)
	}
}

// readSlot takes one of the ReadConcurrency slots for a read of data: it
// waits at most ReadWait for its turn, then refuses the read with 503 and
// Retry-After (and returns false). A handler parses its parameters before
// it asks, so a bad request is 422 however busy the reads are.
func (s *Server) readSlot(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if s.reads == nil {
		return func() {}, true
	}
	t := time.NewTimer(s.opts.ReadWait)
	defer t.Stop()
	select {
	case s.reads <- struct{}{}:
		return func() { <-s.reads }, true
	case <-t.C:
		s.writeError(w, errBusyReads)
	case <-r.Context().Done():
		s.writeError(w, r.Context().Err())
	}
	return nil, false
}

// OutcomeHeader tells a client whether a 503 left anything queued:
// "rejected" (surely nothing: refused before the append) or "unknown" (the
// append may have happened; a retry is safe either way).
const OutcomeHeader = "Chronicle-Outcome"

// writeError maps an error to its status and body: the only such mapping.
func (s *Server) writeError(w http.ResponseWriter, err error) int {
	var verr *event.ValidationError
	var rerr *event.RequestError
	var serr *statusError
	switch {
	case errors.As(err, &verr):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": verr.Errors})
		return http.StatusUnprocessableEntity
	case errors.As(err, &rerr):
		status := requestStatus(rerr.Kind)
		writeJSON(w, status, detail(rerr.Msg))
		return status
	case errors.As(err, &serr):
		if serr.status == http.StatusServiceUnavailable {
			s.retryAfter(w)
			w.Header().Set(OutcomeHeader, "rejected")
		}
		if serr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chronicleweaver"`)
		}
		writeJSON(w, serr.status, detail(serr.msg))
		return serr.status
	case errors.Is(err, queue.ErrBackpressure):
		s.retryAfter(w)
		w.Header().Set(OutcomeHeader, "rejected")
		writeJSON(w, http.StatusServiceUnavailable, detail("backlog over QUEUE_MAX_LEN: retry later"))
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		writeJSON(w, 499, detail("client closed request"))
		return 499
	case errors.Is(err, queue.ErrNotAppended):
		// PUBLISH_TIMEOUT passed before the entry was even sent to Redis:
		// surely nothing queued.
		s.retryAfter(w)
		w.Header().Set(OutcomeHeader, "rejected")
		writeJSON(w, http.StatusServiceUnavailable, detail("Redis did not take the request in time: retry later"))
		return http.StatusServiceUnavailable
	default:
		// A dependency failed. The details (addresses, users, SQL states)
		// go to the log only: the body says nothing internal.
		s.log.Warn(LogDependencyFailed, "err", err)
		s.retryAfter(w)
		w.Header().Set(OutcomeHeader, "unknown")
		writeJSON(w, http.StatusServiceUnavailable, detail("dependency unavailable: retry later"))
		return http.StatusServiceUnavailable
	}
}

// LogDependencyFailed is the message logged when a request fails because
// Redis or PostgreSQL did (the harness counts it, with the error, to see
// that a fault had its effect).
const LogDependencyFailed = "request failed: dependency unavailable"

// requestStatus is the status of a request refused as a whole.
func requestStatus(k event.RequestKind) int {
	if k == event.TooLarge {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest // event.Malformed
}

func (s *Server) retryAfter(w http.ResponseWriter) {
	secs := int((s.opts.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
}

func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

// writeJSON writes v as JSON without HTML escaping: escaping '<', '>' and
// '&' as \u003c etc. would make a response up to six times the size of
// what it repeats (a 422's locations, a stored payload).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"detail":"cannot encode response"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// badHeader is a 422 naming one request header, shaped like body errors.
func badHeader(name, msg, typ string) error {
	return &event.ValidationError{Errors: []event.FieldError{{Loc: []any{"header", name}, Msg: msg, Type: typ}}}
}

// badQuery is a 422 naming one query parameter, shaped like body errors
// (the name cut as body locations are).
func badQuery(param, msg, typ string) error {
	return &event.ValidationError{Errors: []event.FieldError{{Loc: []any{"query", event.CutLoc(param)}, Msg: msg, Type: typ}}}
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.APIToken == "" {
		return true
	}
	// The scheme is case-insensitive (RFC 9110 11.1), the token is not.
	scheme, got, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.opts.APIToken)) == 1
}

// jsonContentType accepts application/json and application/*+json. A
// request without a content type is refused: a browser can send one
// cross-site without a preflight.
func jsonContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
