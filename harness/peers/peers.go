// Package peers runs the comparison of subjects (`make peers`): the
// scenarios of the peers suite (scenarios/suites.yaml) against every
// subject in turn (subjects/*.yaml: ours, the original design, other
// implementations of the same contract), interleaved per scenario so that
// whatever drifts on the machine hits every subject alike, on one backend
// with the same PostgreSQL and Redis (AOF always) as every run of the
// harness. It returns the record (results.Peers); harness/report renders it.
//
// A subject that cannot run (its image does not build, it never becomes
// ready) ends its rows with the reason and the comparison goes on with the
// others.
package peers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
)

// Subject is one subject to compare: a subject file and, for a foreign
// one, the checkout to run.
type Subject struct {
	Name   string // subjects/NAME.yaml
	Source string // the checkout ("" for ours)
}

// Config is one comparison.
type Config struct {
	Subjects  []Subject
	Scenarios []string // default: the peers suite
	Options   scenario.Options
}

// Run builds what each subject needs, then runs every scenario against
// every subject and returns the record. It stops early when ctx ends.
func Run(ctx context.Context, c Config, command string) (results.Peers, error) {
	start := time.Now()
	o := c.Options
	p := results.Peers{Header: results.CollectHeader(command)}
	names := c.Scenarios
	if len(names) == 0 {
		var err error
		if names, err = scenario.Suite(scenario.SuitePeers); err != nil {
			return p, err
		}
	}
	if len(c.Subjects) == 0 {
		return p, errors.New("peers: no subject to compare")
	}
	backend := o.Backend
	if backend == scenario.BackendAuto || backend == "" {
		backend = scenario.BackendLocal
		if env.DockerAvailable(ctx) {
			backend = scenario.BackendDocker
		}
	}
	o.Backend = backend
	o.Peers = true
	logf(o, "peers: %d scenarios x %d subjects on the %s backend", len(names), len(c.Subjects), backend)

	subjects := make([]*subject.Subject, len(c.Subjects))
	images := make([]string, len(c.Subjects))
	for i, cs := range c.Subjects {
		rec, s, image := prepare(ctx, cs, backend, o)
		p.Subjects = append(p.Subjects, rec)
		subjects[i], images[i] = s, image
	}
	for _, name := range names {
		ps := results.PeerScenario{Name: name}
		for i := range c.Subjects {
			rec := &p.Subjects[i]
			res := results.Scenario{Name: name, Subject: rec.Name}
			if rec.Error != "" {
				res.Error = rec.Error
				ps.Runs = append(ps.Runs, res)
				continue
			}
			so := o
			so.Subject, so.ServiceImage, so.SourceDir = subjects[i], images[i], c.Subjects[i].Source
			if subjects[i].Ours {
				so.Subject = nil // ours: the contract as it is, the image or binary built from this module
			}
			res, err := runOne(ctx, name, so)
			res.Subject = rec.Name
			switch {
			case errors.Is(err, scenario.ErrStart):
				rec.Error = fmt.Sprintf("did not start in %s: %v", name, err)
				logf(o, "peers: %s: %s; its other rows are skipped", rec.Name, rec.Error)
			case err != nil:
				logf(o, "peers: %s / %s: %v", name, rec.Name, err)
			default:
				logf(o, "peers: %s / %s: %s", name, rec.Name, summary(res))
			}
			if p.Header.Backend == "" && res.Environment.Backend != "" {
				p.Header.Fill(res.Environment)
				p.Header.Settings = nil // each run's settings are in its record
			}
			ps.Runs = append(ps.Runs, res)
			if ctx.Err() != nil {
				break
			}
		}
		p.Scenarios = append(p.Scenarios, ps)
		if ctx.Err() != nil {
			break
		}
	}
	p.Seconds = time.Since(start).Seconds()
	return p, ctx.Err()
}

// prepare loads a subject's file and, for a foreign one on the docker
// backend, builds its image. A failure is recorded, not returned: the
// subject's rows will carry it.
func prepare(ctx context.Context, cs Subject, backend string, o scenario.Options) (results.PeerSubject, *subject.Subject, string) {
	rec := results.PeerSubject{Name: cs.Name, Source: cs.Source}
	s, err := subject.Load(cs.Name)
	if err != nil {
		rec.Error = err.Error()
		return rec, nil, ""
	}
	rec.Name, rec.Description, rec.Ours = s.Name, strings.TrimSpace(s.Description), s.Ours
	rec.Repository, rec.FileCommit = s.Upstream.Repository, s.Upstream.Commit
	if s.Ours {
		return rec, s, ""
	}
	if cs.Source == "" {
		rec.Error = fmt.Sprintf("no checkout given: clone %s and pass its folder", s.Upstream.Repository)
		return rec, s, ""
	}
	if backend != scenario.BackendDocker {
		// Local: its command runs on this machine, from the checkout.
		return rec, s, ""
	}
	start := time.Now()
	img, err := env.BuildSubjectImage(ctx, s, cs.Source, o.Logf)
	rec.Commit, rec.Digest, rec.Image = img.Checkout.Commit, img.Checkout.Digest, img.Tag
	rec.ImageBuilt, rec.ImageSeconds = img.Built, time.Since(start).Seconds()
	if err != nil {
		rec.Error = "image did not build: " + err.Error()
	}
	return rec, s, img.Tag
}

// runOne runs scenario name with o's subject.
func runOne(ctx context.Context, name string, o scenario.Options) (results.Scenario, error) {
	s, err := scenario.LoadPeers(name, o.Smoke)
	if err != nil {
		return results.Scenario{Name: name, Error: err.Error()}, err
	}
	return scenario.Run(ctx, s, o)
}

func summary(res results.Scenario) string {
	c := res.Check
	v := "valid"
	if !res.Valid {
		v = "INVALID: " + strings.Join(res.AllViolations(), "; ")
	}
	ev := 0.0
	if res.Perf != nil {
		ev = res.Perf.EventsPerSec
	}
	return fmt.Sprintf("%.0f events/s, acknowledged %d, lost %d, duplicated %d: %s", ev, c.Acknowledged, c.Lost, c.Duplicated, v)
}

func logf(o scenario.Options, format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}
