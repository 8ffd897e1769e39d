package scenario_test

import (
	"strings"
	"testing"

	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
)

func TestEveryScenarioFileLoads(t *testing.T) {
	t.Parallel()
	names, err := scenario.Names()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no scenario files")
	}
	for _, name := range names {
		for _, smoke := range []bool{false, true} {
			if _, err := scenario.Load(name, smoke); err != nil {
				t.Errorf("%s (smoke %v): %v", name, smoke, err)
			}
		}
	}
}

func TestFramedFaultValidation(t *testing.T) {
	t.Parallel()
	const head = "name: x\nload: {model: open, rate: 10, duration: 1s}\nnemesis:\n"
	cases := []struct {
		nemesis string
		err     string // "" when valid
	}{
		{"  - {fault: kill, target: redis, every: 1s, during: {fault: pause, target: postgres, lead: 1s}}\n", ""},
		{"  - {fault: kill, target: redis, during: {fault: freeze, target: postgres, lead: 1s}}\n", "nemesis[0].during.fault"},
		{"  - {fault: kill, target: redis, during: {fault: pause, target: service, lead: 1s}}\n", "nemesis[0].during.target"},
		{"  - {fault: kill, target: redis, during: {fault: cut, target: service-0, lead: 1s}}\n", "link to redis or postgres"},
		{"  - {fault: kill, target: redis, during: {fault: slow, target: postgres, lead: 1s}}\n", "nemesis[0].during.latency"},
		{"  - {fault: kill, target: redis, during: {fault: pause, target: postgres}}\n", "nemesis[0].during.lead"},
		{"  - {fault: kill, target: redis, during: {fault: pause, target: postgres, lead: 1s}}\n" +
			"  - {fault: cut, target: postgres}\n", "nemesis[1] targets it too"},
		{"  - {fault: kill, target: service, during: {fault: pause, target: service-0, lead: 1s}}\n", "nemesis[0] targets it too"},
		{"  - {fault: kill, target: redis, during: {fault: pause, target: postgres, lead: 1s}}\n" +
			"  - {fault: kill, target: service-0, during: {fault: pause, target: postgres, lead: 1s}}\n", "another timeline"},
	}
	for _, c := range cases {
		_, err := scenario.Parse([]byte(head+c.nemesis), false)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.nemesis, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one naming %q", c.nemesis, err, c.err)
		}
	}
}
