package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/progress"
	"github.com/chronicleweaver/chronicleweaver/harness/report"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
)

// SoakDurationEnv overrides the soak's load duration (faults keep their
// pace): a Go duration such as 45m.
const SoakDurationEnv = "SOAK_DURATION"

// The soak's sampling and verdict: full and smoke.
const (
	soakEvery, soakSmokeEvery   = 15 * time.Second, 5 * time.Second
	soakWarmUp, soakSmokeWarmUp = 7 * time.Minute, 45 * time.Second // full: IDEMPOTENCY_TTL (5m) and 2m more
	soakMaxDrift                = 0.1                               // resources: at most 10 % change over the run after warm-up
	soakLatencyMaxDrift         = 0.5                               // p99 of the quiet minutes: at most 50 %
)

// soakCmd runs the soak scenario (the soak suite) with the sampler and
// writes OUT/soak.json, OUT/soak.md and OUT/plots/soak-*.png.
//
//	chronicle soak [--smoke] [--out results] [--planted-bug BUG]
func soakCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var o scenario.Options
	p := progress.New(os.Stderr)
	defer p.Close()
	resolve := common(fs, &o, p)
	fs.BoolVar(&o.Smoke, "smoke", false, "the short form: 3 minutes of load, two faults of each kind in the first 80 s, sampled every 5 s")
	out := fs.String("out", "results", "folder for soak.md, soak.json and plots/soak-*.png")
	fs.StringVar(&o.PlantedBug, "planted-bug", "", "switch on a planted bug (negative control)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := resolve(); err != nil {
		return err
	}
	names, err := scenario.Suite(scenario.SuiteSoak)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return fmt.Errorf("soak: suite %s lists %d scenarios, want one", scenario.SuiteSoak, len(names))
	}
	s, err := scenario.Load(names[0], o.Smoke)
	if err != nil {
		return err
	}
	if v := os.Getenv(SoakDurationEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return usageError{fmt.Errorf("soak: %s=%q: want a duration of at least 1m, such as 45m", SoakDurationEnv, v)}
		}
		if err := s.Stretch(d); err != nil {
			return fmt.Errorf("soak: %s: %w", SoakDurationEnv, err)
		}
	}
	warm := soakWarmUp
	o.SampleEvery = soakEvery
	command := "make soak"
	if o.Smoke {
		o.SampleEvery, warm = soakSmokeEvery, soakSmokeWarmUp
		command = "make soak SOAK_FLAGS=--smoke"
	}
	p.Logf("soak: %s for %s, sampled every %s, warm-up %s", s.Name, s.Load.Duration.D(), o.SampleEvery, warm)
	res, runErr := scenario.Run(ctx, s, o)
	p.Close()
	rec := results.Soak{Header: results.CollectHeader(command), Scenario: res, WarmUp: warm.Seconds(),
		MaxDrift: soakMaxDrift, LatencyMaxDrift: soakLatencyMaxDrift, FlatnessJudged: !o.Smoke}
	rec.Header.Fill(res.Environment)
	rec.Judge()
	if err := results.WriteSoak(*out, rec); err != nil {
		return err
	}
	if err := report.Render(*out, "soak"); err != nil {
		return err
	}
	fmt.Printf("soak: wrote %s/soak.md\n", *out)
	for _, sr := range rec.SoakSeriesOf() {
		if t := sr.Trend; sr.Flat && t != nil && t.NotJudged == "" {
			fmt.Printf("soak: %-22s slope %.4g %s/h, change %.1f%% of mean %.4g (bound %.0f%%)\n",
				sr.Name, t.Slope, sr.Unit, 100*t.Drift, t.Mean, 100*t.MaxDrift)
		}
	}
	if runErr != nil {
		return runErr
	}
	if !rec.Pass {
		return fmt.Errorf("soak: FAIL: %s", strings.Join(rec.Reasons, "; "))
	}
	if !rec.FlatnessJudged {
		fmt.Println("soak: PASS (smoke: the run valid and every series sampled; flatness recorded, not judged)")
		return nil
	}
	fmt.Println("soak: PASS")
	return nil
}
