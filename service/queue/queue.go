// Package queue is the service's only door to Redis: a Redis Stream read by
// one consumer group, with a counter of unapplied events for backpressure and
// a dead-letter stream.
//
// One stream entry carries one publish request (all its events). Every
// entry also carries a random token that the store's ledger keys on, so a
// redelivered entry, or a second copy of an entry written by a retried
// command, is applied at most once.
//
// A request may carry an idempotency key (Message.Idem): Append then
// stores a key record (the request's fingerprint and event count, expiring
// after Options.IdempotencyTTL) in the same script call as the XADD, and a
// later Append with a key that has a record appends nothing and answers
// *ReplayError (same fingerprint) or ErrIdemConflict (another one): one
// request, one entry, however often the client retries it within the TTL.
//
// Lifecycle of an entry: Append (XADD, key record and backlog += n,
// atomically, refused over the limit) -> Read (pending in the group; again
// after a crash: Pending with Redis's delivery count, ClaimIDs, Redeliver)
// -> Ack (XACK, XDEL and backlog -= n, atomically, once) or DeadLetter.
// Nothing is ever trimmed before it is acknowledged; so every entry that
// can still be delivered is at or after LedgerHorizon.
package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBackpressure is returned by Append when the backlog is at or over the limit.
var ErrBackpressure = errors.New("queue: backlog over QUEUE_MAX_LEN")

// ErrNotAppended is returned (wrapped with the context's error) by a
// grouped Append whose context ended while the entry still waited for its
// turn: it was never sent to Redis, so nothing was appended and a retry
// cannot duplicate it.
var ErrNotAppended = errors.New("queue: entry not sent to Redis in time: nothing appended")

// ErrIdemConflict is returned by Append when the message's idempotency key
// has a record of a request with another fingerprint (a different body):
// nothing is appended.
var ErrIdemConflict = errors.New("queue: idempotency key already used for a different request")

// ReplayError is returned by Append when the message's idempotency key has
// a record of the same request (same fingerprint): the request was appended
// before (it is queued or applied) and nothing is appended now. It is an
// acknowledgement, not a failure: Count is the first request's events.
type ReplayError struct{ Count int }

func (e *ReplayError) Error() string {
	return fmt.Sprintf("queue: request with this idempotency key already appended (%d events)", e.Count)
}

// Group is the name of the consumer group every worker belongs to.
const Group = "workers"

// Entry field names.
const (
	fieldToken    = "t"
	fieldReceived = "r"
	fieldCount    = "n"
	fieldBody     = "e"
	fieldQueued   = "q" // Redis's clock (TIME) at the append, in microseconds
)

// Entry is one stream entry as read by a worker.
type Entry struct {
	ID         string    // stream entry ID, e.g. "1700000000000-0"
	Token      string    // unique per appended entry; the ledger key
	ReceivedAt time.Time // when the HTTP request arrived
	Count      int       // number of events in Body
	Body       []byte    // the encoded events
	Err        error     // set when the entry's fields are unreadable (a poison entry)
	Deleted    bool      // pending but deleted from the stream: nothing to apply, only to acknowledge
	// Queued is when Redis appended the entry, in microseconds by Redis's
	// clock (the entry's q field; an entry written without it: the
	// millisecond part of its ID). Zero when unknown.
	Queued time.Time
}

// QueuedAt is when the entry was queued, with the microsecond precision of
// ReceivedAt (both become PostgreSQL timestamps, which keep microseconds),
// and never before ReceivedAt: a Redis clock behind the service's must not
// list an event's QUEUED before its RECEIVED.
func (e Entry) QueuedAt() time.Time {
	q := e.Queued
	if q.IsZero() {
		ms, _, _ := strings.Cut(e.ID, "-")
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			return time.Time{}
		}
		q = time.UnixMilli(n).UTC()
	}
	if r := e.ReceivedAt.Truncate(time.Microsecond); q.Before(r) {
		q = r
	}
	return q
}

// Options configures a Queue.
type Options struct {
	Prefix string // key prefix, e.g. "chronicle:"
	MaxLen int64  // QUEUE_MAX_LEN: backlog (events) at which Append refuses
	// Group makes concurrent Append calls share Redis round trips: appends
	// that arrive while one script call is in flight go together in the
	// next (no waiting is added). Close stops the grouping goroutine.
	Group bool
	// PoolSize is the least number of connections Open's client keeps
	// (REDIS_URL's pool_size wins when larger); 0: go-redis's default.
	PoolSize int
	// IdempotencyTTL (IDEMPOTENCY_TTL) is how long a key record outlives
	// its append; 0: DefaultIdempotencyTTL.
	IdempotencyTTL time.Duration
}

// DefaultIdempotencyTTL is Options.IdempotencyTTL when unset.
const DefaultIdempotencyTTL = 24 * time.Hour

// Queue is a Redis Stream with one consumer group.
type Queue struct {
	rdb    redis.UniversalClient
	own    *redis.Client // the client Open built, closed by Close; nil after New
	opts   Options
	stream string
	back   string
	dead   string

	appends chan *pendingAppend // to the grouping goroutine (Options.Group)
	stop    chan struct{}       // closed by Close
	stopped chan struct{}       // closed when the grouping goroutine returned
}

// Open returns a Queue on the Redis at url (REDIS_URL), with a client of
// its own that Close closes. It does not connect: the client dials on first
// use, so the service may start before Redis (ctx is for symmetry with
// store.Open). Call Setup before reading.
func Open(_ context.Context, url string, opts Options) (*Queue, error) {
	ropts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("queue: parse REDIS_URL: %w", err)
	}
	ropts.PoolSize = max(ropts.PoolSize, opts.PoolSize)
	// Every command gives up when its context ends, and none waits on a
	// paused or cut-off server longer than a few seconds (the caller retries).
	ropts.ContextTimeoutEnabled = true
	ropts.DialTimeout = 2 * time.Second
	ropts.ReadTimeout = 3 * time.Second
	ropts.WriteTimeout = 3 * time.Second
	rdb := redis.NewClient(ropts)
	q := New(rdb, opts)
	q.own = rdb
	return q, nil
}

// New returns a Queue on rdb, a client the caller owns (tests that also
// read the keys directly). Call Setup before reading.
func New(rdb redis.UniversalClient, opts Options) *Queue {
	q := &Queue{
		rdb:    rdb,
		opts:   opts,
		stream: opts.Prefix + "stream",
		back:   opts.Prefix + "backlog",
		dead:   opts.Prefix + "dead",
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = DefaultIdempotencyTTL
	}
	q.opts = opts
	if opts.Group {
		q.appends = make(chan *pendingAppend)
		q.stop = make(chan struct{})
		q.stopped = make(chan struct{})
		go q.group()
	}
	return q
}

// Close stops the grouping goroutine (when Options.Group; appends waiting
// for it fail) and closes the client Open built. It is idempotent.
func (q *Queue) Close() {
	if q.stop != nil {
		select {
		case <-q.stop:
		default:
			close(q.stop)
			<-q.stopped
		}
	}
	if q.own != nil {
		_ = q.own.Close()
		q.own = nil
	}
}

// Stream is the key of the stream (for tests and operators).
func (q *Queue) Stream() string { return q.stream }

// DeadStream is the key of the dead-letter stream.
func (q *Queue) DeadStream() string { return q.dead }

// Setup creates the stream and the consumer group when missing.
func (q *Queue) Setup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.stream, Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("queue: create group %s on %s: %w", Group, q.stream, err)
	}
	return nil
}

// Ping checks that Redis answers.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("queue: ping redis: %w", err)
	}
	return nil
}

// Persistence reads Redis's appendonly and appendfsync settings (CONFIG GET;
// managed services that disable CONFIG give an error).
func (q *Queue) Persistence(ctx context.Context) (appendonly, appendfsync string, err error) {
	for _, p := range []struct {
		key string
		dst *string
	}{{"appendonly", &appendonly}, {"appendfsync", &appendfsync}} {
		v, err := q.rdb.ConfigGet(ctx, p.key).Result()
		if err != nil {
			return "", "", fmt.Errorf("queue: CONFIG GET %s: %w", p.key, err)
		}
		*p.dst = v[p.key]
	}
	return appendonly, appendfsync, nil
}

// NewToken returns a fresh random entry token.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// IdemKey is the Redis key of an idempotency key record: the key is
// scoped (scope: the bearer token the request carried, "" without one)
// and hashed, so a record's size does not depend on the key's length and
// no scope can read or collide with another's.
func (q *Queue) IdemKey(scope, key string) string {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return q.opts.Prefix + "idem:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Fingerprint is the fingerprint a key record keeps of a request: of its
// encoded events (after validation, so two bodies that differ only in
// spacing or key order are the same request).
func Fingerprint(body []byte) string {
	h := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// Idem is a request's idempotency key record, as Append stores it.
type Idem struct {
	Key string // the record's Redis key (Queue.IdemKey); "" : the request has none
	Sum string // the request's Fingerprint
}

// appendScript answers a replay or conflict when the request's key has a
// record; else refuses when the backlog is at or over the limit; else
// appends the entry (stamped with Redis's clock in microseconds), stores
// the key record and grows the backlog, atomically.
// KEYS: stream, backlog[, key record]. ARGV: maxlen, n, ttl ms, fingerprint, field/value pairs...
// A replay answers the error "REPLAY <record>", a record being "<fingerprint> <n>".
var appendScript = redis.NewScript(`
if KEYS[3] then
  local v = redis.call('GET', KEYS[3])
  if v then
    return redis.error_reply('REPLAY ' .. v)
  end
end
local b = tonumber(redis.call('GET', KEYS[2]) or '0')
if b >= tonumber(ARGV[1]) then
  return redis.error_reply('BACKPRESSURE ' .. b)
end
local t = redis.call('TIME')
local id = redis.call('XADD', KEYS[1], '*', 'q', t[1] .. string.format('%06d', tonumber(t[2])), unpack(ARGV, 5))
if KEYS[3] then
  redis.call('SET', KEYS[3], ARGV[4] .. ' ' .. ARGV[2], 'PX', ARGV[3])
end
redis.call('INCRBY', KEYS[2], ARGV[2])
return id
`)

// Message is what Append writes: one request's events.
type Message struct {
	Token      string
	ReceivedAt time.Time
	Count      int
	Body       []byte
	Idem       Idem // the request's idempotency key record; zero: none
}

// Append adds one entry and returns its ID once Redis has confirmed it.
// It returns ErrBackpressure when the backlog is at or over MaxLen, and
// for a message with an idempotency key that has a record, *ReplayError
// or ErrIdemConflict, having appended nothing. Any other error leaves the
// outcome unknown: the entry may have been added.
func (q *Queue) Append(ctx context.Context, m Message) (string, error) {
	if q.appends != nil {
		return q.groupedAppend(ctx, m)
	}
	keys := []string{q.stream, q.back}
	if m.Idem.Key != "" {
		keys = append(keys, m.Idem.Key)
	}
	res, err := appendScript.Run(ctx, q.rdb, keys,
		q.opts.MaxLen, m.Count, q.opts.IdempotencyTTL.Milliseconds(), m.Idem.Sum,
		fieldToken, m.Token,
		fieldReceived, m.ReceivedAt.UnixNano(),
		fieldCount, m.Count,
		fieldBody, m.Body,
	).Text()
	if err != nil {
		if strings.HasPrefix(err.Error(), "BACKPRESSURE") {
			return "", ErrBackpressure
		}
		if rec, ok := strings.CutPrefix(err.Error(), "REPLAY "); ok {
			return "", replay(m, rec)
		}
		return "", fmt.Errorf("queue: append to %s: %w", q.stream, err)
	}
	return res, nil
}

// replay is Append's answer for a message whose key has the record rec.
func replay(m Message, rec string) error {
	sum, n, _ := strings.Cut(rec, " ")
	count, err := strconv.Atoi(n)
	if sum != m.Idem.Sum || err != nil {
		return ErrIdemConflict
	}
	return &ReplayError{Count: count}
}

// appendManyScript is appendScript for several entries in one call: each
// is replayed, refused or appended in order, the backlog growing as it
// goes (a key recorded by an earlier entry of the call replays a later one).
// KEYS: stream, backlog, key records... ARGV: maxlen, ttl ms, then per
// entry: n, token, received, body, key record index in KEYS (0: none), fingerprint.
// Returns one element per entry: its ID, "BACKPRESSURE" or "REPLAY <record>".
var appendManyScript = redis.NewScript(`
local max = tonumber(ARGV[1])
local b = tonumber(redis.call('GET', KEYS[2]) or '0')
local t = redis.call('TIME')
local q = t[1] .. string.format('%06d', tonumber(t[2]))
local added = 0
local out = {}
for i = 3, #ARGV, 6 do
  local k = tonumber(ARGV[i + 4])
  local v = false
  if k > 0 then
    v = redis.call('GET', KEYS[k])
  end
  if v then
    out[#out + 1] = 'REPLAY ' .. v
  elseif b + added >= max then
    out[#out + 1] = 'BACKPRESSURE'
  else
    out[#out + 1] = redis.call('XADD', KEYS[1], '*', 'q', q, 't', ARGV[i + 1], 'r', ARGV[i + 2], 'n', ARGV[i], 'e', ARGV[i + 3])
    if k > 0 then
      redis.call('SET', KEYS[k], ARGV[i + 5] .. ' ' .. ARGV[i], 'PX', ARGV[2])
    end
    added = added + tonumber(ARGV[i])
  end
end
if added > 0 then
  redis.call('INCRBY', KEYS[2], added)
end
return out
`)

// Group limits: entries and body bytes per script call.
const (
	groupMaxEntries = 256
	groupMaxBytes   = 1 << 20
)

type pendingAppend struct {
	m    Message
	id   string
	err  error
	done chan struct{}
}

func (q *Queue) groupedAppend(ctx context.Context, m Message) (string, error) {
	// The grouping goroutine may still send the body after this caller
	// gave up (ctx ended) and reused its buffer: it gets a copy of its own.
	m.Body = bytes.Clone(m.Body)
	p := &pendingAppend{m: m, done: make(chan struct{})}
	select {
	case q.appends <- p:
	case <-q.stop:
		return "", fmt.Errorf("queue: append to %s: queue closed: %w", q.stream, ErrNotAppended)
	case <-ctx.Done():
		// Still in line (the grouping goroutine is busy with a call Redis
		// has not answered): surely not appended.
		return "", fmt.Errorf("queue: append to %s: %w (%w)", q.stream, ErrNotAppended, ctx.Err())
	}
	select {
	case <-p.done:
		return p.id, p.err
	case <-ctx.Done():
		// The group is on its way: the outcome is unknown.
		return "", fmt.Errorf("queue: append to %s: %w", q.stream, ctx.Err())
	}
}

// group is the goroutine behind grouped appends: it takes what is waiting,
// sends it as one script call and answers each caller.
func (q *Queue) group() {
	defer close(q.stopped)
	var batch []*pendingAppend
	for {
		select {
		case <-q.stop:
			return
		case p := <-q.appends:
			batch = append(batch[:0], p)
		}
		size := len(batch[0].m.Body)
	more:
		for len(batch) < groupMaxEntries && size < groupMaxBytes {
			select {
			case p := <-q.appends:
				batch = append(batch, p)
				size += len(p.m.Body)
			default:
				break more
			}
		}
		q.appendMany(batch)
	}
}

func (q *Queue) appendMany(batch []*pendingAppend) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := make([]any, 0, 2+6*len(batch))
	args = append(args, q.opts.MaxLen, q.opts.IdempotencyTTL.Milliseconds())
	keys := []string{q.stream, q.back}
	for _, p := range batch {
		k := 0
		if p.m.Idem.Key != "" {
			keys = append(keys, p.m.Idem.Key)
			k = len(keys)
		}
		args = append(args, p.m.Count, p.m.Token, p.m.ReceivedAt.UnixNano(), p.m.Body, k, p.m.Idem.Sum)
	}
	res, err := appendManyScript.Run(ctx, q.rdb, keys, args...).StringSlice()
	if err == nil && len(res) != len(batch) {
		err = fmt.Errorf("script answered %d results for %d entries", len(res), len(batch))
	}
	for i, p := range batch {
		switch {
		case err != nil:
			p.err = fmt.Errorf("queue: append to %s: %w", q.stream, err)
		case res[i] == "BACKPRESSURE":
			p.err = ErrBackpressure
		case strings.HasPrefix(res[i], "REPLAY "):
			p.err = replay(p.m, strings.TrimPrefix(res[i], "REPLAY "))
		default:
			p.id = res[i]
		}
		close(p.done)
	}
}

// Read returns up to count entries never delivered to the group, waiting at
// most block for the first one. It returns no entries and no error on timeout.
func (q *Queue) Read(ctx context.Context, consumer string, count int, block time.Duration) ([]Entry, error) {
	return q.readGroup(ctx, consumer, ">", count, block)
}

// ReadPending returns up to count of consumer's own pending entries with IDs
// greater than after ("0" for all): what a restarted worker left unacknowledged.
func (q *Queue) ReadPending(ctx context.Context, consumer, after string, count int) ([]Entry, error) {
	return q.readGroup(ctx, consumer, after, count, -1)
}

func (q *Queue) readGroup(ctx context.Context, consumer, id string, count int, block time.Duration) ([]Entry, error) {
	streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    Group,
		Consumer: consumer,
		Streams:  []string{q.stream, id},
		Count:    int64(count),
		Block:    block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// The group is gone (Redis lost its data): recreate it so
			// publishing and reading go on; the error is still reported.
			_ = q.Setup(ctx)
		}
		return nil, fmt.Errorf("queue: read %s as %s: %w", q.stream, consumer, err)
	}
	var out []Entry
	for _, s := range streams {
		for _, m := range s.Messages {
			out = append(out, parse(m))
		}
	}
	return out, nil
}

// Claim takes over up to count entries that have been pending in any
// consumer for longer than minIdle (a dead or stuck worker's), starting the
// scan at start ("0-0" first). It returns the entries and where to resume.
func (q *Queue) Claim(ctx context.Context, consumer string, minIdle time.Duration, start string, count int) ([]Entry, string, error) {
	msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   q.stream,
		Group:    Group,
		Consumer: consumer,
		MinIdle:  minIdle,
		Start:    start,
		Count:    int64(count),
	}).Result()
	if err != nil {
		return nil, start, fmt.Errorf("queue: claim idle entries of %s: %w", q.stream, err)
	}
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, parse(m))
	}
	return out, next, nil
}

func parse(m redis.XMessage) Entry {
	e := Entry{ID: m.ID}
	if len(m.Values) == 0 {
		e.Deleted, e.Token = true, "deleted:"+m.ID
		return e
	}
	str := func(k string) (string, bool) {
		v, ok := m.Values[k].(string)
		return v, ok
	}
	tok, ok1 := str(fieldToken)
	rec, ok2 := str(fieldReceived)
	cnt, ok3 := str(fieldCount)
	body, ok4 := str(fieldBody)
	if !ok1 || !ok2 || !ok3 || !ok4 || tok == "" {
		e.Token = "entry:" + m.ID
		e.Err = fmt.Errorf("queue: entry %s: missing fields (has %d)", m.ID, len(m.Values))
		return e
	}
	e.Token = tok
	ns, err := strconv.ParseInt(rec, 10, 64)
	if err != nil {
		e.Err = fmt.Errorf("queue: entry %s: bad receive time %q", m.ID, rec)
		return e
	}
	e.ReceivedAt = time.Unix(0, ns).UTC()
	n, err := strconv.Atoi(cnt)
	if err != nil || n < 0 {
		e.Err = fmt.Errorf("queue: entry %s: bad count %q", m.ID, cnt)
		return e
	}
	e.Count = n
	e.Body = []byte(body)
	if v, ok := str(fieldQueued); ok {
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			e.Err = fmt.Errorf("queue: entry %s: bad queue time %q", m.ID, v)
			return e
		}
		e.Queued = time.UnixMicro(us).UTC()
	}
	return e
}

// ackScript acknowledges entries, deletes them and shrinks the backlog, each
// only once however often it is called.
// KEYS: stream, backlog. ARGV: group, then id/count pairs.
var ackScript = redis.NewScript(`
local done = 0
for i = 2, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    redis.call('DECRBY', KEYS[2], ARGV[i + 1])
    done = done + 1
  end
end
return done
`)

// Ack acknowledges entries once their effect is committed. It returns how
// many were still pending (the others were acknowledged before).
func (q *Queue) Ack(ctx context.Context, entries []Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 1+2*len(entries))
	args = append(args, Group)
	for _, e := range entries {
		args = append(args, e.ID, e.Count)
	}
	n, err := ackScript.Run(ctx, q.rdb, []string{q.stream, q.back}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("queue: ack %d entries: %w", len(entries), err)
	}
	return n, nil
}

// deadScript moves one pending entry to the dead-letter stream, once.
// KEYS: stream, backlog, dead. ARGV: group, id, count, reason, field/value pairs...
var deadScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[3], '*', 'origin', ARGV[2], 'reason', ARGV[4], unpack(ARGV, 5))
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('DECRBY', KEYS[2], ARGV[3])
  return 1
end
return 0
`)

// DeadLetter moves a pending entry to the dead-letter stream with reason.
// It reports false when the entry was no longer pending.
func (q *Queue) DeadLetter(ctx context.Context, e Entry, reason string) (bool, error) {
	n, err := deadScript.Run(ctx, q.rdb, []string{q.stream, q.back, q.dead},
		Group, e.ID, e.Count, reason,
		fieldToken, e.Token,
		fieldReceived, e.ReceivedAt.UnixNano(),
		fieldCount, e.Count,
		fieldBody, e.Body,
		fieldQueued, e.QueuedAt().UnixMicro(),
	).Int()
	if err != nil {
		return false, fmt.Errorf("queue: dead-letter %s: %w", e.ID, err)
	}
	return n == 1, nil
}

// Depth is the state of the queue.
type Depth struct {
	Backlog      int64 // events appended and not yet acknowledged (queue_depth)
	Pending      int64 // entries delivered to a consumer and not yet acknowledged
	DeadLettered int64 // entries in the dead-letter stream
	Entries      int64 // entries in the stream (pending or not yet delivered)
}

// Depth reads the queue's state in one round trip.
func (q *Queue) Depth(ctx context.Context) (Depth, error) {
	pipe := q.rdb.Pipeline()
	back := pipe.Get(ctx, q.back)
	pend := pipe.XPending(ctx, q.stream, Group)
	dead := pipe.XLen(ctx, q.dead)
	size := pipe.XLen(ctx, q.stream)
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) && !strings.HasPrefix(err.Error(), "NOGROUP") {
		return Depth{}, fmt.Errorf("queue: depth of %s: %w", q.stream, err)
	}
	var d Depth
	if v, err := back.Int64(); err == nil {
		d.Backlog = v
	}
	if p, err := pend.Result(); err == nil {
		d.Pending = p.Count
	}
	d.DeadLettered = dead.Val()
	d.Entries = size.Val()
	return d, nil
}
