// Command chronicle is the harness's command line: flags in, library calls
// out.
//
//	chronicle list
//	chronicle run --scenario NAME [--smoke] [--target URL [--database-url URL]] [--planted-bug BUG]
//	chronicle bench [--smoke] [--out results] [--only a,b]
//	chronicle verify [--full] [--out results] [--only a,b] [--no-controls]
//	chronicle report [--results results] [--doc REPORT.md] [--check] [--repo]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/report"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/verify"
)

const usage = `chronicle: the ChronicleWeaver harness

  chronicle list                          scenarios available
  chronicle run --scenario NAME [flags]   run one scenario and check it
  chronicle bench [flags]                 run the benchmark scenarios, write results/bench.*
  chronicle verify [flags]                run the fault suite and planted bugs, write results/verify.*
  chronicle report [flags]                regenerate REPORT.md's generated sections from results/*.json

Run "chronicle COMMAND -h" for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "list":
		err = list()
	case "run":
		err = runCmd(ctx, os.Args[2:])
	case "bench":
		err = benchCmd(ctx, os.Args[2:])
	case "verify":
		err = verifyCmd(ctx, os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "chronicle: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chronicle:", err)
		os.Exit(1)
	}
}

// common registers the flags every running command takes.
func common(fs *flag.FlagSet, o *scenario.Options) {
	fs.StringVar(&o.RunsDir, "runs", "runs", "parent folder of run folders (history, logs)")
	fs.StringVar(&o.Backend, "backend", "local", "environment: local (processes), docker (testcontainers), auto (docker when a daemon answers) or external")
	fs.StringVar(&o.Target, "target", "", "base URL of an already running service (external backend)")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "with --target: PostgreSQL URL for the final read-back (else GET /events)")
	fs.StringVar(&o.Token, "token", os.Getenv("API_TOKEN"), "bearer token for /publish")
	fs.StringVar(&o.Binary, "binary", "", "prebuilt service binary (default: build it)")
	o.Logf = newLogger().Logf
}

func list() error {
	names, err := scenario.Names()
	if err != nil {
		return err
	}
	for _, n := range names {
		s, err := scenario.Load(n, false)
		if err != nil {
			return err
		}
		fmt.Printf("%-18s %-6s %s\n", n, s.Kind, firstSentence(s.Description))
	}
	return nil
}

func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}

func runCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var o scenario.Options
	common(fs, &o)
	name := fs.String("scenario", "", "scenario name (see chronicle list) or path to a scenario file")
	fs.BoolVar(&o.Smoke, "smoke", false, "apply the scenario's short smoke settings")
	fs.StringVar(&o.PlantedBug, "planted-bug", "", "switch on a planted bug (negative control)")
	_ = fs.Parse(args)
	if *name == "" {
		return errors.New("run: --scenario is required")
	}
	s, err := scenario.Load(*name, o.Smoke)
	if err != nil {
		return err
	}
	res, err := scenario.Run(ctx, s, o)
	if err != nil {
		return err
	}
	fmt.Printf("%s: run folder %s\n", s.Name, res.RunDir)
	if !res.Valid {
		return fmt.Errorf("%s: INVALID: %s", s.Name, strings.Join(res.Check.Violations, "; "))
	}
	fmt.Printf("%s: valid\n", s.Name)
	return nil
}

// benchScenarios are the scenarios `make bench` measures, in order.
var benchScenarios = []string{
	"seed-k6", "stress-20k", "throughput", "single-events",
	"scale-1", "scale-2", "scale-3", "aof-everysec", "aof-always", "upsert-unnest", "upsert-copy",
}

func benchCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	var o scenario.Options
	common(fs, &o)
	fs.BoolVar(&o.Smoke, "smoke", false, "short runs (a few seconds each)")
	out := fs.String("out", "results", "folder for bench.md, bench.json and plots")
	only := fs.String("only", "", "comma-separated subset of "+strings.Join(benchScenarios, ","))
	_ = fs.Parse(args)
	names := pick(benchScenarios, *only)
	b := report.Bench{Header: report.CollectHeader("make bench")}
	var failed []string
	for _, n := range names {
		s, err := scenario.Load(n, o.Smoke)
		if err != nil {
			return err
		}
		res, err := scenario.Run(ctx, s, o)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", n, err))
		} else if !res.Valid {
			failed = append(failed, n+": invalid")
		}
		b.Scenarios = append(b.Scenarios, res)
		verify.FillHeader(&b.Header, res)
		if ctx.Err() != nil {
			break
		}
	}
	if err := report.WriteBench(*out, b); err != nil {
		return err
	}
	fmt.Printf("bench: wrote %s/bench.md\n", *out)
	if len(failed) > 0 {
		return fmt.Errorf("bench: %s", strings.Join(failed, "; "))
	}
	return nil
}

func verifyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	var o scenario.Options
	common(fs, &o)
	full := fs.Bool("full", false, "every scenario at full length (default: the bounded smoke set)")
	out := fs.String("out", "results", "folder for verify.md and verify.json")
	only := fs.String("only", "", "comma-separated subset of the scenarios")
	noControls := fs.Bool("no-controls", false, "skip the planted-bug controls")
	_ = fs.Parse(args)
	o.Smoke = !*full
	cmd := "make verify"
	if *full {
		cmd = "make verify-full"
	}
	v := report.Verify{Header: report.CollectHeader(cmd)}
	for _, n := range pick(verify.Scenarios, *only) {
		res, err := verify.RunScenario(ctx, n, o)
		if err != nil {
			o.Logf("%s: %v", n, err)
		}
		v.Scenarios = append(v.Scenarios, res)
		verify.FillHeader(&v.Header, res)
		if ctx.Err() != nil {
			break
		}
	}
	if !*noControls {
		for _, c := range verify.Controls {
			if *only != "" && !strings.Contains(","+*only+",", ","+c.Scenario+",") {
				continue
			}
			pb, err := verify.RunControl(ctx, c.Bug, c.Scenario, o)
			if err != nil {
				o.Logf("%s: %v", c.Bug, err)
			}
			v.PlantedBugs = append(v.PlantedBugs, pb)
			if ctx.Err() != nil {
				break
			}
		}
	}
	if err := report.WriteVerify(*out, v); err != nil {
		return err
	}
	fmt.Printf("verify: wrote %s/verify.md: %s\n", *out, verify.Summary(v))
	for _, s := range v.Scenarios {
		if !s.Valid {
			return errors.New("verify: " + verify.Summary(v))
		}
	}
	for _, b := range v.PlantedBugs {
		if !b.Caught {
			return errors.New("verify: " + verify.Summary(v))
		}
	}
	return nil
}

func pick(all []string, only string) []string {
	if only == "" {
		return all
	}
	return strings.Split(only, ",")
}

// logger prints harness lines to stderr with the time since start.
type logger struct{ start time.Time }

func newLogger() *logger { return &logger{start: time.Now()} }

func (l *logger) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}
