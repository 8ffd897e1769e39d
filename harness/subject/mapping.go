package subject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// How the contract's messages map to a subject's: the request body, the
// /stats answer, the /events answer. The harness generates and checks the
// contract's shapes; these functions translate at the edge.

// Encoder turns a contract request body ({"events": [...]}, n events) into
// the subject's body; nil when the subject takes the contract's shape.
func (s *Subject) Encoder() func(body []byte) ([]byte, error) {
	switch s.API.Publish.Body {
	case BodyList:
		return func(body []byte) ([]byte, error) { return eventsOf(body) }
	case BodySingle:
		return func(body []byte) ([]byte, error) {
			list, err := eventsOf(body)
			if err != nil {
				return nil, err
			}
			var evs []json.RawMessage
			if err := json.Unmarshal(list, &evs); err != nil {
				return nil, fmt.Errorf("subject: request body: %w", err)
			}
			if len(evs) != 1 {
				return nil, fmt.Errorf("subject: the subject takes one event per request, the request has %d", len(evs))
			}
			return evs[0], nil
		}
	}
	return nil
}

// eventsOf returns the events array of a contract body, as it is.
func eventsOf(body []byte) ([]byte, error) {
	var w struct {
		Events json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("subject: request body: %w", err)
	}
	if len(w.Events) == 0 || w.Events[0] != '[' {
		return nil, fmt.Errorf("subject: request body has no events array")
	}
	return w.Events, nil
}

// Gap is a request shape the subject cannot take: the scenario's requests
// carry perRequest events. "" when it can.
func (s *Subject) Gap(perRequest int) string {
	if s.API.Publish.Body == BodySingle && perRequest != 1 {
		return fmt.Sprintf("the subject takes one event per request (api.publish.body: single); the scenario sends %d per request", perRequest)
	}
	return ""
}

// Acknowledged reports whether status acknowledges a publish.
func (s *Subject) Acknowledged(status int) bool {
	return slices.Contains(s.API.Publish.Success, status)
}

// StatsValues are the counters read from one /stats answer. Has records
// which of them the answer held (a field the subject file names but the
// answer lacks is absent too).
type StatsValues struct {
	Received, UniqueProcessed, DuplicatedDropped int64
	QueueDepth, Pending, DeadLettered            int64
	Has                                          StatsFields
}

// StatsFields say which counters a /stats answer held.
type StatsFields struct {
	Received, UniqueProcessed, DuplicatedDropped bool
	QueueDepth, Pending, DeadLettered            bool
}

// Counters reports whether the three counters of the contract are there.
func (f StatsFields) Counters() bool { return f.Received && f.UniqueProcessed && f.DuplicatedDropped }

// Queue reports whether the answer tells the backlog (queue_depth and pending).
func (f StatsFields) Queue() bool { return f.QueueDepth && f.Pending }

// DecodeStats reads a /stats answer through the subject's field map.
func (s *Subject) DecodeStats(body []byte) (StatsValues, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return StatsValues{}, fmt.Errorf("subject %s: /stats: %w", s.Name, err)
	}
	var v StatsValues
	m := s.API.Stats
	for _, f := range []struct {
		path string
		dst  *int64
		has  *bool
	}{
		{m.Received, &v.Received, &v.Has.Received},
		{m.UniqueProcessed, &v.UniqueProcessed, &v.Has.UniqueProcessed},
		{m.DuplicatedDropped, &v.DuplicatedDropped, &v.Has.DuplicatedDropped},
		{m.QueueDepth, &v.QueueDepth, &v.Has.QueueDepth},
		{m.Pending, &v.Pending, &v.Has.Pending},
		{m.DeadLettered, &v.DeadLettered, &v.Has.DeadLettered},
	} {
		if f.path == "" {
			continue
		}
		n, ok, err := intAt(doc, f.path)
		if err != nil {
			return v, fmt.Errorf("subject %s: /stats: %w", s.Name, err)
		}
		*f.dst, *f.has = n, ok
	}
	return v, nil
}

// intAt reads the integer at a dotted path of a decoded JSON document; ok
// is false when the path is absent (or null).
func intAt(doc any, path string) (n int64, ok bool, err error) {
	cur := doc
	for _, key := range strings.Split(path, ".") {
		obj, isObj := cur.(map[string]any)
		if !isObj {
			return 0, false, nil
		}
		if cur, ok = obj[key]; !ok {
			return 0, false, nil
		}
	}
	switch x := cur.(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true, nil
		}
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil || f != float64(int64(f)) {
			return 0, false, fmt.Errorf("%s: %s is not an integer", path, x)
		}
		return int64(f), true, nil
	}
	return 0, false, fmt.Errorf("%s: %v is not a number", path, cur)
}

// StoredEvent is one event of a GET /events answer.
type StoredEvent struct {
	EventID string `json:"event_id"`
	Topic   string `json:"topic"`
}

// EventsPage is one decoded GET /events answer.
type EventsPage struct {
	Events []StoredEvent
	Next   string // the next page's cursor ("" : last page)
}

// DecodeEvents reads a /events answer through the subject's shape.
func (s *Subject) DecodeEvents(body []byte) (EventsPage, error) {
	e := s.API.Events
	var p EventsPage
	if e.Shape == EventsList {
		if err := json.Unmarshal(body, &p.Events); err != nil {
			return p, fmt.Errorf("subject %s: /events: %w", s.Name, err)
		}
		return p, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return p, fmt.Errorf("subject %s: /events: %w", s.Name, err)
	}
	raw, ok := obj[e.Field]
	if !ok {
		return p, fmt.Errorf("subject %s: /events: no %q in the answer", s.Name, e.Field)
	}
	if err := json.Unmarshal(raw, &p.Events); err != nil {
		return p, fmt.Errorf("subject %s: /events: %s: %w", s.Name, e.Field, err)
	}
	if e.NextCursor != "" {
		if c, ok := obj[e.NextCursor]; ok && string(c) != "null" {
			if err := json.Unmarshal(c, &p.Next); err != nil {
				return p, fmt.Errorf("subject %s: /events: %s: %w", s.Name, e.NextCursor, err)
			}
		}
	}
	return p, nil
}
