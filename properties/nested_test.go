package properties

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/service/event"
)

// Nested payloads for the bad-input property: payloads of arbitrary shape
// (objects in arrays in objects, up to nestLevels levels below the payload
// object, some arrays wide), drawn with rapid so that a failure shrinks to
// the smallest payload, and invalid values placed at a drawn depth,
// directly inside an array as often as inside an object.

const (
	// nestLevels is how deep a drawn value nests below the payload object.
	nestLevels = 6
	// nestNodes bounds the values of one drawn payload.
	nestNodes = 120
	// wideArray is the widest drawn array.
	wideArray = 60
)

// jnode is a JSON value as raw text: a scalar, or an object or array of
// nodes. Object keys are raw JSON strings (quotes included), with their
// decoded names for error locations.
type jnode struct {
	kind  byte   // 's' scalar, 'o' object, 'a' array
	raw   string // scalar: its JSON text
	keys  []string
	names []string
	kids  []*jnode
}

func (n *jnode) encode(b *bytes.Buffer) {
	switch n.kind {
	case 's':
		b.WriteString(n.raw)
	case 'o':
		b.WriteByte('{')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(n.keys[i])
			b.WriteByte(':')
			k.encode(b)
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteByte(',')
			}
			k.encode(b)
		}
		b.WriteByte(']')
	}
}

func (n *jnode) String() string {
	var b bytes.Buffer
	n.encode(&b)
	return b.String()
}

// has reports whether object n has a member named name.
func (n *jnode) has(name string) bool {
	for _, x := range n.names {
		if x == name {
			return true
		}
	}
	return false
}

// insert adds kid to object n under key (raw) / name, or to array n at
// position at.
func (n *jnode) insert(at int, key, name string, kid *jnode) {
	if n.kind == 'o' {
		n.keys = append(n.keys, key)
		n.names = append(n.names, name)
		n.kids = append(n.kids, kid)
		return
	}
	n.kids = append(n.kids[:at], append([]*jnode{kid}, n.kids[at:]...)...)
}

// Pieces of drawn strings: raw JSON string content, each valid (escapes,
// multi-byte UTF-8, a surrogate pair, characters JSON encoders escape).
var stringPieces = []string{"a", "Z", "0", " ", "é", "日本", "😀", `\n`, `\"`, `\\`, `\/`, `\u00e9`, `\ud83d\ude00`, `\t`, "<&>", "\u2028"}

// drawString draws a valid JSON string (quotes included) and its value.
func drawString(t *rapid.T, label string) (raw, value string) {
	n := rapid.IntRange(0, 4).Draw(t, label+" pieces")
	var b strings.Builder
	b.WriteByte('"')
	for i := range n {
		b.WriteString(rapid.SampledFrom(stringPieces).Draw(t, fmt.Sprintf("%s piece %d", label, i)))
	}
	b.WriteByte('"')
	raw = b.String()
	if err := json.Unmarshal([]byte(raw), &value); err != nil {
		panic(fmt.Sprintf("drawn string %s is not JSON: %v", raw, err))
	}
	return raw, value
}

// drawNumber draws a number PostgreSQL numeric holds, in the form jsonb
// gives back (no exponent, no -0): a drawn integer with 0..3 decimals.
func drawNumber(t *rapid.T) string {
	m := rapid.Int64Range(-1_000_000_000, 1_000_000_000).Draw(t, "mantissa")
	scale := rapid.IntRange(0, 3).Draw(t, "scale")
	neg := m < 0
	if neg {
		m = -m
	}
	d := strconv.FormatInt(m, 10)
	if scale > 0 {
		d = strings.Repeat("0", max(0, scale+1-len(d))) + d
		d = d[:len(d)-scale] + "." + d[len(d)-scale:]
	}
	if neg && m != 0 {
		d = "-" + d
	}
	return d
}

func drawScalar(t *rapid.T) *jnode {
	switch rapid.IntRange(0, 3).Draw(t, "scalar") {
	case 0:
		return &jnode{kind: 's', raw: rapid.SampledFrom([]string{"null", "true", "false"}).Draw(t, "literal")}
	case 1:
		return &jnode{kind: 's', raw: drawNumber(t)}
	default:
		raw, _ := drawString(t, "string")
		return &jnode{kind: 's', raw: raw}
	}
}

// drawMembers adds 0..max drawn members to object n, with names distinct
// and not in taken.
func drawMembers(t *rapid.T, n *jnode, lo, hi, level int, budget *int, taken ...string) {
	count := rapid.IntRange(lo, hi).Draw(t, "members")
	for i := 0; i < count && *budget > 0; i++ {
		raw, name := drawString(t, "key")
		for j := 0; n.has(name) || contains(taken, name); j++ {
			name += "_" + strconv.Itoa(j)
			raw = jsonString(name)
		}
		n.insert(0, raw, name, drawNode(t, level, budget))
	}
}

// drawNode draws a value at nesting level (1: a member of the payload
// object), spending budget.
func drawNode(t *rapid.T, level int, budget *int) *jnode {
	*budget--
	kind := 0
	if level < nestLevels && *budget > 0 {
		kind = rapid.IntRange(0, 2).Draw(t, "kind")
	}
	switch kind {
	case 1:
		n := &jnode{kind: 'o'}
		drawMembers(t, n, 0, 4, level+1, budget)
		return n
	case 2:
		n := &jnode{kind: 'a'}
		width := rapid.IntRange(0, 5).Draw(t, "width")
		if rapid.IntRange(0, 5).Draw(t, "wide?") == 5 {
			width = rapid.IntRange(6, wideArray).Draw(t, "wide width")
		}
		for i := 0; i < width && *budget > 0; i++ {
			n.kids = append(n.kids, drawNode(t, level+1, budget))
		}
		return n
	}
	return drawScalar(t)
}

// nestedPayload is a drawn payload: the required members and drawn ones.
type nestedPayload struct {
	root *jnode // the payload object
}

// drawPayload draws a valid payload of arbitrary shape around message and
// timestamp (and seq).
func drawPayload(t *rapid.T, message, stamp string, seq int) nestedPayload {
	root := &jnode{kind: 'o'}
	root.insert(0, `"message"`, "message", &jnode{kind: 's', raw: jsonString(message)})
	root.insert(0, `"timestamp"`, "timestamp", &jnode{kind: 's', raw: jsonString(stamp)})
	root.insert(0, `"seq"`, "seq", &jnode{kind: 's', raw: strconv.Itoa(seq)})
	budget := nestNodes
	drawMembers(t, root, 1, 4, 1, &budget, payloadNames...)
	return nestedPayload{root: root}
}

// payloadNames are the payload members the bad-input property sets by
// name: drawn members never take them.
var payloadNames = []string{"message", "timestamp", "seq", "n", "pad", "deep"}

// A badValue is a kind of value the service must refuse anywhere in a
// payload.
type badValue struct {
	name  string
	key   bool   // the member's key is bad, not its value
	raw   string // the bad value, or the bad key (a JSON string)
	whole bool   // refused as a whole payload (payload_too_large at ["payload"])
}

var badValues = []badValue{
	{name: `string with \u0000`, raw: `"nul \u0000 here"`},
	{name: "string with a lone high surrogate", raw: `"x\ud800"`},
	{name: "string with a lone low surrogate", raw: `"\udc00y"`},
	{name: "string of invalid UTF-8", raw: "\"bad \xff byte\""},
	{name: "string of a truncated UTF-8 sequence", raw: "\"\xe6\x97\""},
	{name: "number 1e200000", raw: `1e200000`},
	{name: "number -1e131072", raw: `-1e131072`},
	{name: "number 1e-16384", raw: `1e-16384`},
	{name: "value over 64 KiB", raw: jsonString(long(64 << 10)), whole: true},
	{name: `key with \u0000`, key: true, raw: `"k\u0000"`},
	{name: "key with a lone surrogate", key: true, raw: `"\udbff"`},
	{name: "key of invalid UTF-8", key: true, raw: "\"k\xfe\""},
}

// container is an object or array of a payload and its path from the
// payload object.
type container struct {
	n    *jnode
	path []any
}

func containers(n *jnode, path []any, out []container) []container {
	if n.kind == 's' {
		return out
	}
	out = append(out, container{n, path})
	for i, k := range n.kids {
		seg := any(i)
		if n.kind == 'o' {
			seg = n.names[i]
		}
		out = containers(k, append(append([]any(nil), path...), seg), out)
	}
	return out
}

// placeBad draws a bad value and a place for it in p (any object or array,
// at any depth; or a new array holding it, so that a bad value sits
// directly inside an array as often as not) and returns what was placed
// and the loc, after ["body","events",i], the 422 must name.
func placeBad(t *rapid.T, p nestedPayload) (string, []any) {
	bv := rapid.SampledFrom(badValues).Draw(t, "bad value")
	cs := containers(p.root, nil, nil)
	c := cs[rapid.IntRange(0, len(cs)-1).Draw(t, "where")]
	value := &jnode{kind: 's', raw: bv.raw}
	keyRaw, keyName := "", ""
	if bv.key {
		value = drawScalar(t)
		keyRaw = bv.raw
		if err := json.Unmarshal([]byte(bv.raw), &keyName); err != nil { // the service's lenient decoding
			keyName = strings.ToValidUTF8(bv.raw[1:len(bv.raw)-1], "\uFFFD")
		}
	}
	inArray := !bv.key && rapid.Bool().Draw(t, "in a new array?")
	if c.n.kind == 'a' && bv.key {
		// A key needs an object: a new one, in the array.
		obj := &jnode{kind: 'o'}
		at := rapid.IntRange(0, len(c.n.kids)).Draw(t, "at")
		c.n.insert(at, "", "", obj)
		c = container{obj, append(append([]any(nil), c.path...), at)}
	}
	var loc []any
	switch {
	case inArray:
		arr := &jnode{kind: 'a'}
		for range rapid.IntRange(0, 3).Draw(t, "neighbours") {
			arr.kids = append(arr.kids, drawScalar(t))
		}
		at := rapid.IntRange(0, len(arr.kids)).Draw(t, "at in the new array")
		arr.insert(at, "", "", value)
		seg := c.addMember(t, arr, "", "")
		loc = append(append(append([]any{}, c.path...), seg), at)
	default:
		seg := c.addMember(t, value, keyRaw, keyName)
		loc = append(append([]any{}, c.path...), seg)
		if bv.key {
			loc = append(loc, "[key]")
		}
	}
	b, _ := json.Marshal(loc) // the path below the payload object
	where := string(b)
	if bv.whole {
		return bv.name + " at " + where, []any{"payload"}
	}
	return bv.name + " at " + where, append([]any{"payload"}, loc...)
}

// addMember adds kid to c: under a new drawn key (keyRaw, keyName when
// given) in an object, at a drawn position in an array. It returns the
// path segment of kid.
func (c container) addMember(t *rapid.T, kid *jnode, keyRaw, keyName string) any {
	if c.n.kind == 'a' {
		at := rapid.IntRange(0, len(c.n.kids)).Draw(t, "at")
		c.n.insert(at, "", "", kid)
		return at
	}
	if keyRaw == "" {
		keyRaw, keyName = drawString(t, "bad member key")
		for j := 0; c.n.has(keyName); j++ {
			keyName += "_" + strconv.Itoa(j)
			keyRaw = jsonString(keyName)
		}
	}
	c.n.insert(0, keyRaw, keyName, kid)
	return keyName
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestNestedGenerator checks the nested payload generator against the
// service's validator directly (no environment, so many checks): a
// drawn payload is accepted and kept as sent; with a bad value placed in
// it, the request is refused and the detail names the placed value's loc.
func TestNestedGenerator(t *testing.T) {
	t.Parallel()
	check(t, budget{bounded: 500, full: 5000}, newRunStats(t), func(t *rapid.T) {
		p := drawPayload(t, "m", baseTime.Format(time.RFC3339), 1)
		body := func() []byte {
			var b bytes.Buffer
			b.WriteString(`{"events":[{"event_id":"e","topic":"t","source":"s","timestamp":"2025-01-01T00:00:00Z","payload":`)
			p.root.encode(&b)
			b.WriteString(`}]}`)
			return b.Bytes()
		}
		evs, err := event.DecodeRequest(body(), event.Limits{})
		if err != nil {
			t.Fatalf("valid payload %s refused: %v", p.root, err)
		}
		if !sameJSON(evs[0].Payload, []byte(p.root.String())) {
			t.Fatalf("payload %s decoded as %s", p.root, evs[0].Payload)
		}
		what, loc := placeBad(t, p)
		_, err = event.DecodeRequest(body(), event.Limits{})
		var ve *event.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: payload %q: %v, want a validation error", what, p.root, err)
		}
		want, _ := json.Marshal(append([]any{"body", "events", 0}, loc...))
		var got []string
		for _, fe := range ve.Errors {
			b, _ := json.Marshal(fe.Loc)
			if string(b) == string(want) {
				return
			}
			got = append(got, string(b))
		}
		t.Fatalf("%s: no loc %s among %v", what, want, got)
	})
}
