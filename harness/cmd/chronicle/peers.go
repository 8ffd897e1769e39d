package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/peers"
	"github.com/chronicleweaver/chronicleweaver/harness/progress"
	"github.com/chronicleweaver/chronicleweaver/harness/report"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/verify"
)

// subjectList is the repeated --subject NAME[=CHECKOUT] flag.
type subjectList []peers.Subject

func (l *subjectList) String() string { return fmt.Sprint(*l) }

func (l *subjectList) Set(v string) error {
	name, src, _ := strings.Cut(v, "=")
	if name == "" {
		return errors.New("want NAME or NAME=CHECKOUT")
	}
	*l = append(*l, peers.Subject{Name: name, Source: src})
	return nil
}

// peersCmd runs the comparison of subjects and writes results/peers.json
// and results/peers.md (`make peers`).
func peersCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	var o scenario.Options
	var subjects subjectList
	fs.Var(&subjects, "subject", "a subject to compare, in table order: NAME (subjects/NAME.yaml) or NAME=CHECKOUT for a foreign one (repeat)")
	fs.StringVar(&o.RunsDir, "runs", "runs", "parent folder of run folders (history, logs)")
	fs.StringVar(&o.Backend, "backend", scenario.BackendAuto, "local, docker, or auto (docker when a daemon answers); every subject runs on the same")
	fs.BoolVar(&o.Smoke, "smoke", false, "the scenarios' short smoke settings (a plumbing check, not a comparison)")
	only := fs.String("only", "", "comma-separated subset of the peers suite")
	out := fs.String("out", "results", "folder for peers.json and peers.md")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	pr := progress.New(os.Stderr)
	defer pr.Close()
	o.Logf = pr.Logf
	o.Status = func(st scenario.Status) { pr.Status(st.String()) }
	n, err := scenario.KeepRunsSetting()
	if err != nil {
		return err
	}
	o.KeepRuns = n
	suite, err := verify.Load(scenario.SuitePeers, *only, false)
	if err != nil {
		return err
	}
	cmd := "make peers"
	if o.Smoke {
		cmd += " (smoke)"
	}
	start := time.Now()
	p, err := peers.Run(ctx, peers.Config{Subjects: subjects, Scenarios: suite.Scenarios, Options: o}, cmd)
	if werr := results.WritePeers(*out, p); werr != nil {
		return errors.Join(err, werr)
	}
	if rerr := report.Render(*out, "peers"); rerr != nil {
		return errors.Join(err, rerr)
	}
	fmt.Printf("peers: wrote %s/peers.md and %s/peers.json in %s\n", *out, *out, time.Since(start).Round(time.Second))
	return err
}
