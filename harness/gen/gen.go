// Package gen is the harness's event source (Jepsen's generator for data):
// a deterministic stream of POST /publish bodies with an exact share of
// duplicate event copies.
//
// Every key a source produces is namespaced by the run: topics are
// RunID+"-t<k>" and event ids RunID+"-e<n>", so a run's events can be found
// on a target shared with other runs (see Config.EventIDPrefix).
//
// Duplicates are planned, not sampled: copy positions are cut into blocks of
// 1000 (the last block of a bounded source is the remainder) and in each
// block exactly round(size*DuplicateRatio) positions, chosen with the seeded
// RNG, repeat an earlier key. The very first copy of a source is never a
// duplicate (there is nothing to repeat). A duplicate repeats the key
// (topic, event_id) but not the payload: its "seq" (the copy number) and its
// timestamp are its own, so "each stored payload is one of the copies sent"
// can be checked.
//
// Event ids are shared across topics when Config.SharedIDs asks for it: a
// planned fraction of the keys reuse the event id of an earlier key under
// another topic (RunID+"-e<m>" with m < n), so that a store which took
// event_id alone for the identity, not (topic, event_id), loses events. Key
// numbers are cut into blocks of BlockSize and in each exactly
// round(BlockSize*SharedIDs) of them, chosen with a second seeded RNG (the
// duplicate plan is the same with or without sharing), reuse an id. Keys
// stay distinct: an id is reused only under a topic it has no key in yet.
//
// The same Config gives the same requests byte for byte, whatever the
// concurrency of Next: the sequential part (which key each copy carries) is
// decided under a lock, and each body is encoded from (Seed, Seq) alone.
package gen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// Source constants.
const (
	// BlockSize is the number of copy positions over which the duplicate
	// count is exact.
	BlockSize = 1000
	// RecentRequests is how many previous requests a "recent" duplicate may
	// be copied from (they are likely in flight concurrently).
	RecentRequests = 8
	// EventSource is the "source" field of every event.
	EventSource = "harness"

	// Defaults of the duplicate origin shares.
	DefaultInRequestShare = 0.2
	DefaultRecentShare    = 0.5
	// DefaultSharedIDs is the share of keys reusing an event id under
	// another topic that the fault scenarios use unless they say otherwise
	// (harness/scenario); gen's own zero value means none.
	DefaultSharedIDs = 0.1
	// sharedTries is how many earlier keys a sharing key draws before it
	// gives up and keeps an id of its own (each drawn id used under every
	// topic already).
	sharedTries = 8

	// Service limits the generated requests stay within (the contract's
	// defaults: 64 KiB payload, 10,000 events and 10 MiB per request).
	maxPayloadBytes  = 64<<10 - 1024
	maxEventsPerReq  = 10_000
	maxBodyBytes     = 10 << 20
	maxRunIDBytes    = 200
	eventOverhead    = 128 // JSON of one event besides its ids and payload, generously
	payloadSkeleton  = 96  // payload JSON besides the padding, generously
	padPoolBytes     = 64 << 10
	timestampLayout  = "2006-01-02T15:04:05.000000Z07:00"
	timestampLength  = len("2006-01-02T15:04:05.000000Z")
	baseTimeSpanSecs = 365 * 24 * 3600
)

// Config describes a source.
type Config struct {
	Seed int64
	// RunID namespaces every key: topics are RunID+"-t<k>" (k < Topics),
	// event ids RunID+"-e<n>". 1..200 bytes of letters, digits, '.', '_',
	// ':' and '-'.
	RunID string
	// Events is the total number of event copies to produce; 0 = unbounded.
	Events int
	// DuplicateRatio is the fraction of copies that repeat an earlier key,
	// exact per block of BlockSize copies; 0 <= DuplicateRatio < 1.
	DuplicateRatio float64
	// Topics is the number of topics (>= 1); a key's topic is a function of
	// (Seed, key number).
	Topics int
	// EventsPerRequest is the number of copies per request (1..10,000); the
	// last request of a bounded source may hold fewer.
	EventsPerRequest int
	// PayloadBytes is the approximate encoded size of each payload: the
	// message is padded to reach it (0: no padding).
	PayloadBytes int
	// Disorder: copy n's timestamp is base + n*1ms minus a random amount in
	// [0, Disorder) (microsecond resolution), base being a fixed time
	// derived from Seed.
	Disorder time.Duration
	// InRequestShare is the share of duplicates copied from earlier in the
	// same request; 0 means DefaultInRequestShare, a negative value none.
	InRequestShare float64
	// RecentShare is the share of duplicates copied from the last
	// RecentRequests requests; 0 means DefaultRecentShare, a negative value
	// none. The rest copy any earlier key.
	RecentShare float64
	// SharedIDs is the fraction of keys whose event id is one an earlier key
	// already has under another topic: exactly round(BlockSize*SharedIDs)
	// per block of BlockSize keys (key 0 excepted), each reusing the id of
	// an earlier key drawn at random, under a topic that id has no key in
	// yet (after sharedTries draws whose ids are used under every topic,
	// the key keeps its own id: only with few topics and a high fraction).
	// 0 <= SharedIDs < 1; above 0 it needs Topics >= 2.
	SharedIDs float64
}

// EventIDPrefix is the prefix of every event id of the run.
func (c Config) EventIDPrefix() string { return c.RunID + "-e" }

// TopicPrefix is the prefix of every topic of the run.
func (c Config) TopicPrefix() string { return c.RunID + "-t" }

// Duplicates is the exact number of duplicate copies a bounded source
// produces (-1 for an unbounded one). Distinct keys are Events - Duplicates.
func (c Config) Duplicates() int {
	if c.Events <= 0 {
		return -1
	}
	total := 0
	for start := 0; start < c.Events; start += BlockSize {
		size := min(BlockSize, c.Events-start)
		total += blockDuplicates(int64(start), size, c.DuplicateRatio)
	}
	return total
}

// blockDuplicates is the number of duplicate positions in the block of size
// copies starting at copy start.
func blockDuplicates(start int64, size int, ratio float64) int {
	d := int(math.Round(float64(size) * ratio))
	eligible := size
	if start == 0 {
		eligible-- // the very first copy has nothing to repeat
	}
	return max(0, min(d, eligible))
}

func (c Config) withDefaults() Config {
	share := func(v, def float64) float64 {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	c.InRequestShare = share(c.InRequestShare, DefaultInRequestShare)
	c.RecentShare = share(c.RecentShare, DefaultRecentShare)
	return c
}

// Validate checks a configuration: a run ID that namespaces keys (1..200
// bytes of letters, digits, '.', '_', ':' and '-'), shares and ratios in
// range, and requests within the service's default limits (events per
// request, payload size, body size). Errors name the field ("gen:
// DuplicateRatio: ..."); New checks its Config with it.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("gen: %s: "+format, append([]any{field}, args...)...))
	}
	if c.RunID == "" {
		bad("RunID", "must be set (it namespaces the run's topics and event ids)")
	} else if len(c.RunID) > maxRunIDBytes {
		bad("RunID", "%d bytes, at most %d", len(c.RunID), maxRunIDBytes)
	} else {
		for i := 0; i < len(c.RunID); i++ {
			if ch := c.RunID[i]; !runIDByte(ch) {
				bad("RunID", "%q has %q at byte %d: use letters, digits, '.', '_', ':' or '-'", c.RunID, ch, i)
				break
			}
		}
	}
	if c.Events < 0 {
		bad("Events", "%d is negative (0 means unbounded)", c.Events)
	}
	if !(c.DuplicateRatio >= 0 && c.DuplicateRatio < 1) {
		bad("DuplicateRatio", "%v is outside [0, 1)", c.DuplicateRatio)
	}
	if c.Topics < 1 {
		bad("Topics", "%d, need at least 1", c.Topics)
	}
	if c.EventsPerRequest < 1 || c.EventsPerRequest > maxEventsPerReq {
		bad("EventsPerRequest", "%d is outside 1..%d (the service's MAX_BATCH default)", c.EventsPerRequest, maxEventsPerReq)
	}
	if c.PayloadBytes < 0 || c.PayloadBytes > maxPayloadBytes {
		bad("PayloadBytes", "%d is outside 0..%d (payloads must stay under the service's 64 KiB limit)", c.PayloadBytes, maxPayloadBytes)
	}
	if c.EventsPerRequest >= 1 && c.PayloadBytes >= 0 {
		perEvent := eventOverhead + 2*len(c.RunID) + 40 + max(c.PayloadBytes, payloadSkeleton+len(c.RunID)+40)
		if est := c.EventsPerRequest * perEvent; est > maxBodyBytes {
			bad("EventsPerRequest", "%d events of about %d bytes make a body of about %d bytes, over the service's 10 MiB MAX_BODY_BYTES default: lower EventsPerRequest or PayloadBytes",
				c.EventsPerRequest, perEvent, est)
		}
	}
	if c.Disorder < 0 {
		bad("Disorder", "%s is negative", c.Disorder)
	}
	if !(c.SharedIDs >= 0 && c.SharedIDs < 1) {
		bad("SharedIDs", "%v is outside [0, 1)", c.SharedIDs)
	} else if c.SharedIDs > 0 && c.Topics == 1 {
		bad("SharedIDs", "%v needs at least 2 topics (an event id is shared across topics), Topics is 1", c.SharedIDs)
	}
	d := c.withDefaults()
	for _, f := range []struct {
		name string
		v    float64
	}{{"InRequestShare", d.InRequestShare}, {"RecentShare", d.RecentShare}} {
		if !(f.v >= 0 && f.v <= 1) {
			bad(f.name, "%v is outside [0, 1]", f.v)
		}
	}
	if sum := d.InRequestShare + d.RecentShare; sum > 1 {
		bad("RecentShare", "InRequestShare %v + RecentShare %v = %v, over 1", d.InRequestShare, d.RecentShare, sum)
	}
	return errors.Join(errs...)
}

func runIDByte(ch byte) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
		ch == '.' || ch == '_' || ch == ':' || ch == '-'
}

// Request is one POST /publish request.
type Request struct {
	Seq  int64         // 0, 1, 2, ... in generation order
	Keys []history.Key // the key of every event copy, in body order
	Body []byte        // {"events":[...]}, valid per the contract
}

// Source produces requests. It is safe for concurrent use.
type Source struct {
	cfg  Config
	base time.Time // timestamp of copy 0 before disorder
	pad  []byte    // padding pool: letters, digits and spaces

	mu         sync.Mutex // guards the fields below
	rng        *rand.Rand
	seq        int64  // next request number
	copies     int64  // copy positions planned so far
	keys       int64  // distinct keys created so far
	blockStart int64  // first position of block
	block      []bool // duplicate positions of the current block
	recent     [RecentRequests][]int64
	recentNext int // ring index of the next request's slot

	// Shared event ids (SharedIDs > 0 only).
	srng          *rand.Rand          // plans and draws the sharing; not rng, so the duplicate plan stays the same
	keyBlockStart int64               // first key number of keyBlock
	keyBlock      []bool              // sharing keys of the current key block
	shared        map[int64]sharedKey // key number -> its identity, for the keys that reuse an id
	groups        map[int64][]int64   // key number owning an id -> the topics other keys use it under
}

// sharedKey is the identity of a key that reuses the event id of key root
// under topic.
type sharedKey struct{ root, topic int64 }

// keyRef is a key's identity as numbers: event id RunID+"-e<id>", topic
// RunID+"-t<topic>".
type keyRef struct{ id, topic int64 }

// New validates cfg and returns a source.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Source{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6368726f6e69636c)), // "chronicl"
	}
	if cfg.SharedIDs > 0 {
		s.srng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x736861726564)) // "shared"
		s.shared = map[int64]sharedKey{}
		s.groups = map[int64][]int64{}
	}
	h := mix(uint64(cfg.Seed), 0xba5e)
	s.base = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h%baseTimeSpanSecs) * time.Second)
	prng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x706164)) // "pad"
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
	s.pad = make([]byte, padPoolBytes)
	for i := range s.pad {
		s.pad[i] = alphabet[prng.IntN(len(alphabet))]
	}
	return s, nil
}

// Config returns the source's configuration with defaults applied.
func (s *Source) Config() Config { return s.cfg }

// Next returns the next request; false once Events copies were produced.
func (s *Source) Next() (Request, bool) {
	s.mu.Lock()
	n := int64(s.cfg.EventsPerRequest)
	if s.cfg.Events > 0 {
		n = min(n, int64(s.cfg.Events)-s.copies)
		if n <= 0 {
			s.mu.Unlock()
			return Request{}, false
		}
	}
	seq, first := s.seq, s.copies
	s.seq++
	nums := make([]int64, n)
	for i := range nums {
		nums[i] = s.pick(first+int64(i), nums[:i])
	}
	s.copies += n
	s.recent[s.recentNext] = nums
	s.recentNext = (s.recentNext + 1) % RecentRequests
	refs := make([]keyRef, n)
	for i, k := range nums {
		refs[i] = keyRef{id: k, topic: -1}
		if sk, ok := s.shared[k]; ok {
			refs[i] = keyRef{id: sk.root, topic: sk.topic}
		}
	}
	s.mu.Unlock()

	keys := make([]history.Key, n)
	for i, r := range refs {
		if r.topic < 0 {
			r.topic = s.topicOf(r.id)
		}
		keys[i] = history.Key{Topic: s.cfg.RunID + "-t" + strconv.FormatInt(r.topic, 10), ID: s.eventID(r.id)}
	}
	return Request{Seq: seq, Keys: keys, Body: s.encode(seq, first, keys)}, true
}

// All drains the source: every request Next has not returned yet. It
// panics on an unbounded source.
func (s *Source) All() []Request {
	if s.cfg.Events <= 0 {
		panic("gen: All called on an unbounded source (Events 0)")
	}
	var out []Request
	for {
		r, ok := s.Next()
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

// pick returns the key number of copy pos; inReq are the key numbers of the
// request's earlier copies. Called with s.mu held.
func (s *Source) pick(pos int64, inReq []int64) int64 {
	if !s.duplicate(pos) {
		k := s.keys
		s.keys++
		if s.srng != nil {
			s.share(k)
		}
		return k
	}
	u := s.rng.Float64()
	if u < s.cfg.InRequestShare && len(inReq) > 0 {
		return inReq[s.rng.IntN(len(inReq))]
	}
	if u < s.cfg.InRequestShare+s.cfg.RecentShare {
		total := 0
		for _, r := range s.recent {
			total += len(r)
		}
		if total > 0 {
			i := s.rng.IntN(total)
			for _, r := range s.recent {
				if i < len(r) {
					return r[i]
				}
				i -= len(r)
			}
		}
	}
	return s.rng.Int64N(s.keys) // s.keys >= 1: position 0 is never a duplicate
}

// duplicate reports whether copy pos repeats a key, planning blocks as
// positions reach them. Positions are asked in order. Called with s.mu held.
func (s *Source) duplicate(pos int64) bool {
	if pos >= s.blockStart+int64(len(s.block)) {
		s.blockStart = pos
		size := BlockSize
		if s.cfg.Events > 0 {
			size = min(size, s.cfg.Events-int(pos))
		}
		s.block = s.planBlock(pos, size)
	}
	return s.block[pos-s.blockStart]
}

// planBlock chooses exactly blockDuplicates positions of the block.
func (s *Source) planBlock(start int64, size int) []bool {
	return pickBlock(s.rng, start, size, blockDuplicates(start, size, s.cfg.DuplicateRatio))
}

// pickBlock marks d positions (at most all of them) of the block of size
// starting at start, drawn with rng; position 0 of the block starting at 0
// is never marked (the very first key or copy has nothing before it).
func pickBlock(rng *rand.Rand, start int64, size, d int) []bool {
	block := make([]bool, size)
	lo := 0
	if start == 0 {
		lo = 1
	}
	cand := make([]int, 0, size-lo)
	for i := lo; i < size; i++ {
		cand = append(cand, i)
	}
	for i := range min(d, len(cand)) { // partial Fisher-Yates: the first d of a random permutation
		j := i + rng.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
		block[cand[i]] = true
	}
	return block
}

// share decides whether new key k reuses an earlier key's event id and, if
// so, records under which id and topic. Called with s.mu held, for k = 0,
// 1, 2, ... in order.
func (s *Source) share(k int64) {
	if k >= s.keyBlockStart+int64(len(s.keyBlock)) {
		s.keyBlockStart = k
		s.keyBlock = s.planKeyBlock(k)
	}
	if !s.keyBlock[k-s.keyBlockStart] {
		return
	}
	for range sharedTries {
		root := s.srng.Int64N(k) // k >= 1: key 0 never shares
		if sk, ok := s.shared[root]; ok {
			root = sk.root
		}
		used := append([]int64{s.topicOf(root)}, s.groups[root]...)
		free := int64(s.cfg.Topics - len(used))
		if free <= 0 {
			continue
		}
		r := s.srng.Int64N(free)
		for t := range int64(s.cfg.Topics) {
			if slices.Contains(used, t) {
				continue
			}
			if r == 0 {
				s.shared[k] = sharedKey{root: root, topic: t}
				s.groups[root] = append(s.groups[root], t)
				return
			}
			r--
		}
	}
}

// planKeyBlock chooses exactly round(BlockSize*SharedIDs) keys of the key
// block starting at key number start (key 0 excepted) to share an id.
func (s *Source) planKeyBlock(start int64) []bool {
	return pickBlock(s.srng, start, BlockSize, int(math.Round(BlockSize*s.cfg.SharedIDs)))
}

// topicOf is the topic number of key k when it does not share an id (and
// of every key owning one): a function of (Seed, k).
func (s *Source) topicOf(k int64) int64 {
	return int64(mix(uint64(s.cfg.Seed), uint64(k)) % uint64(s.cfg.Topics))
}

func (s *Source) eventID(k int64) string {
	return s.cfg.RunID + "-e" + strconv.FormatInt(k, 10)
}

// encode builds the body of request seq whose copies start at position
// first. It depends only on (Seed, seq, first, keys).
func (s *Source) encode(seq, first int64, keys []history.Key) []byte {
	rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), mix(0x626f6479, uint64(seq)))) // "body"
	per := 100 + 2*len(s.cfg.RunID) + max(s.cfg.PayloadBytes, payloadSkeleton)
	buf := make([]byte, 0, 16+len(keys)*per)
	var tail []byte
	buf = append(buf, `{"events":[`...)
	for i, k := range keys {
		c := first + int64(i) // copy number
		ts := s.base.Add(time.Duration(c) * time.Millisecond)
		if us := int64(s.cfg.Disorder / time.Microsecond); us > 0 {
			ts = ts.Add(-time.Duration(rng.Int64N(us)) * time.Microsecond)
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		// RunID is validated to need no JSON escaping.
		buf = append(buf, `{"event_id":"`...)
		buf = append(buf, k.ID...)
		buf = append(buf, `","topic":"`...)
		buf = append(buf, k.Topic...)
		buf = append(buf, `","source":"`+EventSource+`","timestamp":"`...)
		tsAt := len(buf)
		buf = ts.AppendFormat(buf, timestampLayout)
		tsText := buf[tsAt:]
		buf = append(buf, `","payload":`...)

		payloadAt := len(buf)
		buf = append(buf, `{"message":"event `...)
		buf = append(buf, k.ID...)
		buf = append(buf, " copy "...)
		buf = strconv.AppendInt(buf, c, 10)
		tail = append(tail[:0], `","timestamp":"`...)
		tail = append(tail, tsText...)
		tail = append(tail, `","seq":`...)
		tail = strconv.AppendInt(tail, c, 10)
		tail = append(tail, '}')
		if padLen := s.cfg.PayloadBytes - (len(buf) - payloadAt) - len(tail); padLen > 0 {
			buf = append(buf, ' ')
			off := rng.IntN(len(s.pad) - padLen + 1)
			buf = append(buf, s.pad[off:off+padLen-1]...)
		}
		buf = append(buf, tail...)
		buf = append(buf, '}')
	}
	return append(buf, "]}"...)
}

// mix is SplitMix64's finaliser of a ^ b*golden: a well-spread hash.
func mix(a, b uint64) uint64 {
	z := a ^ (b * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
