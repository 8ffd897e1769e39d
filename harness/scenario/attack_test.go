package scenario_test

import (
	"strings"
	"testing"

	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
)

// An attack is checked: a checked scenario of one service, no faults, a
// load of fixed duration, and each bound named when it is out of range.
func TestAttackValidation(t *testing.T) {
	t.Parallel()
	const attack = "attack: {rate: 10, holders: 2, min_throughput_ratio: 0.7, max_rss_mib: 300}\n"
	const load = "load: {model: closed, users: 2, duration: 1s}\n"
	cases := []struct {
		doc string
		err string // "" when valid
	}{
		{"name: x\n" + load + attack, ""},
		{"name: x\nkind: bench\n" + load + attack, "only a check scenario"},
		{"name: x\nenv: {services: 2}\n" + load + attack, "env.services"},
		{"name: x\nevents: {total: 100}\nload: {model: closed, users: 2}\n" + attack, "load.duration"},
		{"name: x\nexpect: {unknown: true}\nnemesis: [{fault: kill, target: redis}]\n" + load + attack, "no nemesis"},
		{"name: x\n" + load + "attack: {rate: 0, min_throughput_ratio: 0.7, max_rss_mib: 300}\n", "attack.rate"},
		{"name: x\n" + load + "attack: {rate: 10, holders: -1, min_throughput_ratio: 0.7, max_rss_mib: 300}\n", "attack.holders"},
		{"name: x\n" + load + "attack: {rate: 10, min_throughput_ratio: 1.5, max_rss_mib: 300}\n", "attack.min_throughput_ratio"},
		{"name: x\n" + load + "attack: {rate: 10, min_throughput_ratio: 0.7}\n", "attack.max_rss_mib"},
	}
	for _, c := range cases {
		_, err := scenario.Parse([]byte(c.doc), false)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.doc, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one naming %q", c.doc, err, c.err)
		}
	}
	// The smoke run of hostile keeps its bounds and shortens its phases.
	s, err := scenario.Load("hostile", true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Attack == nil || s.Attack.MinThroughputRatio != 0.4 || s.Attack.MaxRSSMiB != 300 || s.Load.Duration.D().Seconds() > 10 {
		t.Errorf("hostile (smoke): attack %+v, load %+v; want the 0.4 and 300 MiB bounds and windows of at most 10 s", s.Attack, s.Load)
	}
}
