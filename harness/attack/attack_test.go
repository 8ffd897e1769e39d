package attack_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/attack"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The attacks are what they say: case 1 of the issue in about 64 KB,
// every publish body is JSON under MAX_BODY_BYTES' default and each
// payload under 64 KiB, and every kind names a status it must get.
func TestKinds(t *testing.T) {
	t.Parallel()
	r := attack.LongKeyNULs("t", "1", "<", 55_000, 1_000)
	if n := len(r.Body); n < 63_000 || n > 65_000 {
		t.Errorf("case 1: %d bytes, want about 64 KB", n)
	}
	for i, k := range attack.Kinds(attack.Config{Namespace: "ns", PageBytes: 1 << 20}) {
		if len(k.Want) == 0 || k.Bound(100) <= 0 {
			t.Errorf("%s: no wanted status or bound", k.Name)
		}
		req := k.Build(i)
		if req.Method != http.MethodPost {
			continue
		}
		var body struct {
			Events []struct {
				Payload json.RawMessage `json:"payload"`
			} `json:"events"`
		}
		if strings.Contains(k.Name, "nested") {
			continue // 30,000 deep: past encoding/json's own depth limit
		}
		if err := json.Unmarshal(req.Body, &body); err != nil || len(req.Body) > 10<<20 {
			t.Errorf("%s: body of %d bytes: %v", k.Name, len(req.Body), err)
		}
		for _, e := range body.Events {
			if len(e.Payload) > 64<<10 {
				t.Errorf("%s: payload of %d bytes, over 64 KiB (the refusal would be for its size)", k.Name, len(e.Payload))
			}
		}
	}
}
