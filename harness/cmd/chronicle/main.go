// Command chronicle is the harness's command line: flags in, library calls
// out.
//
//	chronicle list
//	chronicle run --scenario NAME [--smoke] [--target URL [--database-url URL]] [--planted-bug BUG]
//	    [--subject NAME] [--service-cmd 'COMMAND ARGS' | --service-image IMAGE] [--source DIR]
//	chronicle bench [--smoke] [--suite bench] [--out results] [--only a,b]
//	chronicle verify [--full] [--out results] [--only a,b] [--no-controls]
//	chronicle peers --subject NAME[=CHECKOUT]... [--smoke] [--only a,b] [--backend auto] [--out results]
//	chronicle report [--results results] [--doc REPORT.md] [--check] [--repo]
//	chronicle report --md verify,properties [--results results]
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
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
	"github.com/chronicleweaver/chronicleweaver/harness/verify"
)

const usage = `chronicle: the ChronicleWeaver harness

  chronicle list                          scenarios available
  chronicle run --scenario NAME [flags]   run one scenario and check it
  chronicle bench [flags]                 run the benchmark scenarios, write results/bench.*
  chronicle verify [flags]                run the fault suite and planted bugs, write results/verify.*
  chronicle peers --subject NAME[=DIR]... run the peers suite against each subject, write results/peers.*
  chronicle report [flags]                regenerate REPORT.md's generated sections from results/*.json,
                                          or (--md) results/*.md from results/*.json

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
	case "peers":
		err = peersCmd(ctx, os.Args[2:])
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

// subjectFlags are the flags naming the subject under test; resolve loads
// it into the options once the flags are parsed.
type subjectFlags struct{ name string }

func (f *subjectFlags) resolve(o *scenario.Options) error {
	name := f.name
	if name == "" && (o.ServiceCmd != "" || o.ServiceImage != "" || o.SourceDir != "") {
		name = subject.Default // a command or image read through the contract's mapping
	}
	if name == "" {
		return nil
	}
	s, err := subject.Load(name)
	if err != nil {
		return err
	}
	if !s.Ours && o.ServiceImage == "" && o.ServiceCmd == "" && o.SourceDir == "" {
		return fmt.Errorf("subject %s runs from a checkout of %s: pass --source DIR (local backend) or --service-image IMAGE (docker)",
			s.Name, s.Upstream.Repository)
	}
	o.Subject = s
	return nil
}

// common registers the flags every running command takes; the returned
// function, called after parsing, resolves the subject.
func common(fs *flag.FlagSet, o *scenario.Options) func() error {
	sf := &subjectFlags{}
	fs.StringVar(&sf.name, "subject", "", "subject under test: subjects/NAME.yaml (or a file); default: this module's service ("+subject.Default+")")
	fs.StringVar(&o.ServiceCmd, "service-cmd", "", "command line run as each service instance (local backend; ${APP_PORT} etc. expanded), read through the subject's mapping")
	fs.StringVar(&o.ServiceImage, "service-image", "", "image run as each service container (docker backend), read through the subject's mapping")
	fs.StringVar(&o.SourceDir, "source", "", "checkout of a foreign subject (local backend: its run.command runs there)")
	fs.StringVar(&o.RunsDir, "runs", "runs", "parent folder of run folders (history, logs)")
	fs.StringVar(&o.Backend, "backend", scenario.BackendLocal, "environment: local (processes), docker (testcontainers), auto (docker when a daemon answers) or external")
	fs.StringVar(&o.Target, "target", "", "base URL of an already running service (external backend)")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "with --target: PostgreSQL URL for the final read-back (else GET /events)")
	fs.StringVar(&o.Token, "token", os.Getenv("API_TOKEN"), "bearer token for /publish")
	fs.StringVar(&o.Binary, "binary", "", "prebuilt service binary (default: build it)")
	o.Logf = newLogger().Logf
	return func() error { return sf.resolve(o) }
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
	resolve := common(fs, &o)
	name := fs.String("scenario", "", "scenario name (see chronicle list) or path to a scenario file")
	fs.BoolVar(&o.Smoke, "smoke", false, "apply the scenario's short smoke settings")
	fs.StringVar(&o.PlantedBug, "planted-bug", "", "switch on a planted bug (negative control)")
	_ = fs.Parse(args)
	if err := resolve(); err != nil {
		return err
	}
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
		return fmt.Errorf("%s: INVALID: %s", s.Name, strings.Join(res.AllViolations(), "; "))
	}
	fmt.Printf("%s: valid\n", s.Name)
	return nil
}

func benchCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	var o scenario.Options
	resolve := common(fs, &o)
	fs.BoolVar(&o.Smoke, "smoke", false, "short runs (a few seconds each)")
	suiteName := fs.String("suite", scenario.SuiteBench, "suite of scenarios/"+scenario.SuitesFile+" to run: "+scenario.SuiteBench+" or "+scenario.SuiteBenchSmoke)
	out := fs.String("out", "results", "folder for bench.md, bench.json and plots")
	only := fs.String("only", "", "comma-separated subset of the suite's scenarios")
	_ = fs.Parse(args)
	if err := resolve(); err != nil {
		return err
	}
	suite, err := verify.Load(*suiteName, *only, false)
	if err != nil {
		return err
	}
	v, failed := runSuite(ctx, suite, "make bench", o)
	if err := results.WriteBench(*out, results.Bench{Header: v.Header, Scenarios: v.Scenarios}); err != nil {
		return err
	}
	if err := report.Render(*out, "bench"); err != nil {
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
	resolve := common(fs, &o)
	full := fs.Bool("full", false, "every scenario at full length (default: the bounded smoke set)")
	out := fs.String("out", "results", "folder for verify.md and verify.json")
	only := fs.String("only", "", "comma-separated subset of the scenarios")
	noControls := fs.Bool("no-controls", false, "skip the planted-bug controls")
	_ = fs.Parse(args)
	if err := resolve(); err != nil {
		return err
	}
	o.Smoke = !*full
	cmd := "make verify"
	if *full {
		cmd = "make verify-full"
	}
	name := scenario.SuiteVerify
	if *full {
		name = scenario.SuiteVerifyFull
	}
	suite, err := verify.Load(name, *only, !*noControls)
	if err != nil {
		return err
	}
	v, failed := runSuite(ctx, suite, cmd, o)
	if err := results.WriteVerify(*out, v); err != nil {
		return err
	}
	if err := report.Render(*out, "verify"); err != nil {
		return err
	}
	fmt.Printf("verify: wrote %s/verify.md: %s\n", *out, verify.Summary(v))
	if len(failed) > 0 {
		return fmt.Errorf("verify: %s", strings.Join(failed, "; "))
	}
	return nil
}

// runSuite runs every item of a suite, logging what each showed, and
// returns the record and the items that failed.
func runSuite(ctx context.Context, suite verify.Suite, command string, o scenario.Options) (v results.Verify, failed []string) {
	v = suite.Run(ctx, command, o, func(name string, item verify.Item) {
		line, err := item()
		if err != nil {
			o.Logf("%s: %v", name, err)
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			return
		}
		o.Logf("%s", line)
	})
	return v, failed
}

// logger prints harness lines to stderr with the time since start.
type logger struct{ start time.Time }

func newLogger() *logger { return &logger{start: time.Now()} }

func (l *logger) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}
