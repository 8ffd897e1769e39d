// Package history records what the harness did and saw, Jepsen style: one
// op when a request (or a fault) is invoked and one when it completes, as
// JSON lines.
//
// A completion is ok (the request surely happened: 2xx), fail (surely did
// not happen: a definite rejection) or info (unknown: a timeout, a reset
// connection, a 503 that may have queued part of the request). Unknown is
// never counted as failure.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Type is the kind of an op.
type Type string

// Op types.
const (
	Invoke Type = "invoke"
	OK     Type = "ok"
	Fail   Type = "fail"
	Info   Type = "info"
)

// Functions recorded in the history besides faults.
const (
	FPublish = "publish"
)

// Replayed is the value of an ok completion whose answer said the request
// was a replay (its Idempotency-Key already applied by an earlier attempt).
const Replayed = "replayed"

// NemesisProcess is the process number of fault ops.
const NemesisProcess = -1

// Key is an event's identity, (topic, event_id).
type Key struct {
	Topic string `json:"t"`
	ID    string `json:"i"`
}

// Op is one line of the history.
type Op struct {
	Index   int64         `json:"index"`
	Req     int64         `json:"req"`     // links an invocation to its completion
	Process int           `json:"process"` // load worker number; NemesisProcess for faults
	Type    Type          `json:"type"`
	F       string        `json:"f"` // FPublish, or the fault's name
	Time    time.Time     `json:"time"`
	Keys    []Key         `json:"keys,omitempty"`       // the request's event keys, in order (invocations)
	Status  int           `json:"status,omitempty"`     // HTTP status (completions)
	Latency time.Duration `json:"latency_ns,omitempty"` // completion time - invocation time
	Error   string        `json:"error,omitempty"`
	Value   string        `json:"value,omitempty"` // fault target and details
	// IdemKey is the Idempotency-Key a publish invocation carried ("" for
	// none). The invocations that share one are attempts of one request:
	// the first and the retries of an unknown outcome (see Requests).
	IdemKey string `json:"idem_key,omitempty"`
}

// Recorder appends ops to a file (JSON lines) and keeps them in memory. It
// is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	enc     *json.Encoder
	ops     []Op
	nextReq int64
	err     error
}

// NewRecorder writes to path; an empty path keeps the history in memory only.
func NewRecorder(path string) (*Recorder, error) {
	r := &Recorder{}
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("history: create %s: %w", path, err)
		}
		r.f = f
		r.w = bufio.NewWriterSize(f, 1<<16)
		r.enc = json.NewEncoder(r.w)
	}
	return r, nil
}

func (r *Recorder) add(op Op) Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Index = int64(len(r.ops))
	if op.Type == Invoke {
		op.Req = r.nextReq
		r.nextReq++
	}
	r.ops = append(r.ops, op)
	if r.enc != nil && r.err == nil {
		r.err = r.enc.Encode(op)
	}
	return op
}

// Invoke records the start of an operation and returns it (with its Req).
func (r *Recorder) Invoke(process int, f string, keys []Key, value string) Op {
	return r.add(Op{Process: process, Type: Invoke, F: f, Time: time.Now(), Keys: keys, Value: value})
}

// InvokeAt is Invoke with an explicit time (the scheduled send time).
func (r *Recorder) InvokeAt(t time.Time, process int, f string, keys []Key, value string) Op {
	return r.add(Op{Process: process, Type: Invoke, F: f, Time: t, Keys: keys, Value: value})
}

// InvokeKeyed is InvokeAt for a publish carrying an Idempotency-Key:
// every attempt of one request (its retries) is invoked with the same key.
func (r *Recorder) InvokeKeyed(t time.Time, process int, f string, keys []Key, value, idemKey string) Op {
	return r.add(Op{Process: process, Type: Invoke, F: f, Time: t, Keys: keys, Value: value, IdemKey: idemKey})
}

// Complete records the end of inv at time end.
func (r *Recorder) Complete(inv Op, typ Type, end time.Time, status int, errMsg, value string) Op {
	return r.add(Op{Req: inv.Req, Process: inv.Process, Type: typ, F: inv.F, Time: end,
		Status: status, Latency: end.Sub(inv.Time), Error: errMsg, Value: value})
}

// Ops returns a copy of the ops so far, in record order.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Close flushes the file.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return r.err
	}
	err := r.err
	if ferr := r.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	r.f = nil
	if err != nil {
		return fmt.Errorf("history: write: %w", err)
	}
	return nil
}

// Read loads a history file.
func Read(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	defer f.Close()
	return Decode(f)
}

// Decode reads JSON-lines ops.
func Decode(r io.Reader) ([]Op, error) {
	dec := json.NewDecoder(r)
	var ops []Op
	for {
		var op Op
		err := dec.Decode(&op)
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return ops, fmt.Errorf("history: decode op %d: %w", len(ops), err)
		}
		ops = append(ops, op)
	}
}

// Pair is an invocation with its completion (nil while none was recorded:
// the outcome is unknown).
type Pair struct {
	Invoke     Op
	Completion *Op
}

// Outcome is the completion's type, or Info when there is none.
func (p Pair) Outcome() Type {
	if p.Completion == nil {
		return Info
	}
	return p.Completion.Type
}

// Pairs matches every invocation of f ("" for all) with its completion, in
// invocation order.
func Pairs(ops []Op, f string) []Pair {
	idx := map[int64]int{}
	var out []Pair
	for _, op := range ops {
		if f != "" && op.F != f {
			continue
		}
		if op.Type == Invoke {
			idx[op.Req] = len(out)
			out = append(out, Pair{Invoke: op})
			continue
		}
		if i, ok := idx[op.Req]; ok {
			c := op
			out[i].Completion = &c
		}
	}
	return out
}

// Request is one publish request as the client meant it: every attempt
// sent with one Idempotency-Key (a request sent without a key is its own
// single attempt).
type Request struct {
	IdemKey  string // "" : sent without a key
	Keys     []Key  // the events' keys (every attempt sends the same body)
	Attempts []Pair // in invocation order
}

// Outcome is the request's: OK when an attempt was acknowledged; else
// Info when an attempt's outcome is unknown (it may have been applied,
// whatever later attempts answered); else Fail.
func (q Request) Outcome() Type {
	out := Fail
	for _, a := range q.Attempts {
		switch a.Outcome() {
		case OK:
			return OK
		case Info:
			out = Info
		}
	}
	return out
}

// Requests groups the publish attempts of ops by Idempotency-Key, in the
// order of each request's first attempt.
func Requests(ops []Op) []Request {
	var out []Request
	byKey := map[string]int{}
	for _, p := range Pairs(ops, FPublish) {
		k := p.Invoke.IdemKey
		if i, ok := byKey[k]; ok && k != "" {
			out[i].Attempts = append(out[i].Attempts, p)
			continue
		}
		if k != "" {
			byKey[k] = len(out)
		}
		out = append(out, Request{IdemKey: k, Keys: p.Invoke.Keys, Attempts: []Pair{p}})
	}
	return out
}
