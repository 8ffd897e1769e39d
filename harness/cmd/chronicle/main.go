// Command chronicle is the harness's command line: flags in, library calls
// out.
//
//	chronicle list
//	chronicle run [--scenario] NAME [--smoke] [--target URL [--database-url URL]] [--planted-bug BUG]
//	    [--subject NAME] [--service-cmd 'COMMAND ARGS' | --service-image IMAGE] [--source DIR]
//	chronicle bench [--smoke] [--suite bench] [--out results] [--only a,b]
//	chronicle verify [--full] [--out results] [--only a,b] [--no-controls]
//	chronicle soak [--smoke] [--out results]
//	chronicle peers --subject NAME[=CHECKOUT]... [--smoke] [--only a,b] [--backend auto] [--out results]
//	chronicle report [--results results] [--doc REPORT.md] [--check] [--repo]
//	chronicle report --md verify,properties [--results results]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chronicleweaver/chronicleweaver/harness/progress"
	"github.com/chronicleweaver/chronicleweaver/harness/report"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
	"github.com/chronicleweaver/chronicleweaver/harness/verify"
	"github.com/chronicleweaver/chronicleweaver/internal/suggest"
)

const usage = `chronicle: the ChronicleWeaver harness

  chronicle list                          scenarios available
  chronicle run --scenario NAME [flags]   run one scenario and check it (chronicle run NAME works too)
  chronicle bench [flags]                 run the benchmark scenarios, write results/bench.*
  chronicle verify [flags]                run the fault suite and planted bugs, write results/verify.*
  chronicle soak [--smoke] [--out DIR]    the long run with faults, resources sampled, write results/soak.*
  chronicle peers --subject NAME[=DIR]... run the peers suite against each subject, write results/peers.*
  chronicle report [flags]                regenerate REPORT.md's generated sections from results/*.json,
                                          or (--md) results/*.md from results/*.json

Run "chronicle COMMAND -h" for the flags of a command. Run folders go under
runs/; the newest 3 of each scenario are kept (CHRONICLE_KEEP_RUNS, 0: all).
`

// commands are the commands main knows, for suggestions.
var commands = []string{"list", "run", "bench", "verify", "soak", "peers", "report", "help"}

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
	case "soak":
		err = soakCmd(ctx, os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "chronicle: unknown command %q%s\n\n%s", os.Args[1], suggest.Hint(os.Args[1], commands), usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chronicle:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
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

// common registers the flags every running command takes and sets where
// its progress goes (p: a live line on a terminal, plain lines elsewhere).
// The returned function, called after parsing, resolves the subject and
// how many run folders to keep.
func common(fs *flag.FlagSet, o *scenario.Options, p *progress.Printer) func() error {
	sf := &subjectFlags{}
	fs.StringVar(&sf.name, "subject", "", "subject under test: subjects/NAME.yaml (or a file); default: this module's service ("+subject.Default+")")
	fs.StringVar(&o.ServiceCmd, "service-cmd", "", "command line run as each service instance (local backend; ${APP_PORT} etc. expanded), read through the subject's mapping")
	fs.StringVar(&o.ServiceImage, "service-image", "", "image run as each service container (docker backend), read through the subject's mapping")
	fs.StringVar(&o.SourceDir, "source", "", "checkout of a foreign subject (local backend: its run.command runs there)")
	fs.StringVar(&o.RunsDir, "runs", "runs", "parent folder of run folders (history, logs); the newest "+
		fmt.Sprint(scenario.DefaultKeepRuns)+" of each scenario are kept ("+scenario.KeepRunsEnv+", 0: all)")
	fs.StringVar(&o.Backend, "backend", scenario.BackendLocal, "environment: local (processes), docker (testcontainers), auto (docker when a daemon answers) or external")
	fs.StringVar(&o.Target, "target", "", "base URL of an already running service (external backend)")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "with --target: PostgreSQL URL for the final read-back (else GET /events)")
	fs.StringVar(&o.Token, "token", os.Getenv("API_TOKEN"), "bearer token for /publish")
	fs.StringVar(&o.Binary, "binary", "", "prebuilt service binary (default: build it)")
	o.Logf = p.Logf
	o.Status = func(st scenario.Status) { p.Status(st.String()) }
	return func() error {
		if err := sf.resolve(o); err != nil {
			return err
		}
		return keepRuns(o)
	}
}

// keepRuns sets o.KeepRuns from the environment (scenario.KeepRunsEnv).
func keepRuns(o *scenario.Options) error {
	n, err := scenario.KeepRunsSetting()
	o.KeepRuns = n
	return err
}

// runsSummary prints what the runs folder holds, as a run's last line.
func runsSummary(p *progress.Printer, o scenario.Options) {
	u, err := scenario.Usage(o.RunsDir)
	if err != nil {
		p.Logf("%v", err)
		return
	}
	keep := fmt.Sprintf("the newest %d of each scenario are kept", o.KeepRuns)
	if o.KeepRuns == 0 {
		keep = "every run is kept"
	}
	p.Logf("%s (%s; %s sets how many)", u, keep, scenario.KeepRunsEnv)
}

func list() error { return listTo(os.Stdout) }

// listTo writes the scenarios, one a line: name, kind, first sentence.
func listTo(w io.Writer) error {
	names, err := scenario.Names()
	if err != nil {
		return err
	}
	for _, n := range names {
		s, err := scenario.Load(n, false)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-18s %-6s %s\n", n, s.Kind, firstSentence(s.Description))
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
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var o scenario.Options
	p := progress.New(os.Stderr)
	defer p.Close()
	resolve := common(fs, &o, p)
	name := fs.String("scenario", "", "scenario name (see chronicle list) or path to a scenario file")
	fs.BoolVar(&o.Smoke, "smoke", false, "apply the scenario's short smoke settings")
	fs.StringVar(&o.PlantedBug, "planted-bug", "", "switch on a planted bug (negative control)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *name == "" && fs.NArg() == 1:
		*name = fs.Arg(0)
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("run: unexpected arguments %q (one scenario per run: --scenario NAME)", fs.Args())}
	case *name == "":
		var b strings.Builder
		if err := listTo(&b); err != nil {
			return err
		}
		return usageError{fmt.Errorf("run: which scenario? chronicle run --scenario NAME [--smoke], NAME one of:\n%s", strings.TrimRight(b.String(), "\n"))}
	}
	if err := resolve(); err != nil {
		return err
	}
	s, err := scenario.Load(*name, o.Smoke)
	if err != nil {
		return err
	}
	res, err := scenario.Run(ctx, s, o)
	p.Close()
	if res.RunDir != "" {
		fmt.Printf("%s: run folder %s\n", s.Name, res.RunDir)
		runsSummary(p, o)
	}
	if err != nil {
		return err
	}
	if !res.Valid {
		return fmt.Errorf("%s: INVALID: %s", s.Name, strings.Join(res.AllViolations(), "; "))
	}
	fmt.Printf("%s: valid\n", s.Name)
	if res.MissedBound() {
		fmt.Printf("%s: the latency bound was missed even at the lowest rate (%.0f req/s): no rate passed on this machine\n",
			s.Name, res.Steps[0].Rate)
	}
	return nil
}

func benchCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o scenario.Options
	p := progress.New(os.Stderr)
	defer p.Close()
	resolve := common(fs, &o, p)
	fs.BoolVar(&o.Smoke, "smoke", false, "short runs (a few seconds each)")
	suiteName := fs.String("suite", scenario.SuiteBench, "suite of scenarios/"+scenario.SuitesFile+" to run: "+scenario.SuiteBench+" or "+scenario.SuiteBenchSmoke)
	out := fs.String("out", "results", "folder for bench.md, bench.json and plots")
	only := fs.String("only", "", "comma-separated subset of the suite's scenarios")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := resolve(); err != nil {
		return err
	}
	suite, err := verify.Load(*suiteName, *only, false)
	if err != nil {
		return err
	}
	v, failed := runSuite(ctx, suite, "make bench", o, p)
	if err := results.WriteBench(*out, results.Bench{Header: v.Header, Scenarios: v.Scenarios}); err != nil {
		return err
	}
	if err := report.Render(*out, "bench"); err != nil {
		return err
	}
	fmt.Printf("bench: wrote %s/bench.md\n", *out)
	for _, sc := range v.Scenarios {
		if sc.MissedBound() {
			fmt.Printf("bench: %s: latency bound missed even at the lowest rate (%.0f req/s): recorded in bench.md, not a failure\n",
				sc.Name, sc.Steps[0].Rate)
		}
	}
	runsSummary(p, o)
	if len(failed) > 0 {
		return fmt.Errorf("bench: %s", strings.Join(failed, "; "))
	}
	return nil
}

func verifyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var o scenario.Options
	p := progress.New(os.Stderr)
	defer p.Close()
	resolve := common(fs, &o, p)
	full := fs.Bool("full", false, "every scenario at full length (default: the bounded smoke set)")
	out := fs.String("out", "results", "folder for verify.md and verify.json")
	only := fs.String("only", "", "comma-separated subset of the scenarios")
	noControls := fs.Bool("no-controls", false, "skip the planted-bug controls")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
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
	v, failed := runSuite(ctx, suite, cmd, o, p)
	if err := results.WriteVerify(*out, v); err != nil {
		return err
	}
	if err := report.Render(*out, "verify"); err != nil {
		return err
	}
	fmt.Printf("verify: wrote %s/verify.md: %s\n", *out, verify.Summary(v))
	runsSummary(p, o)
	if len(failed) > 0 {
		return fmt.Errorf("verify: %s", strings.Join(failed, "; "))
	}
	return nil
}

// runSuite runs every item of a suite, logging what each showed and
// counting the items on p, and returns the record and the items that
// failed.
func runSuite(ctx context.Context, suite verify.Suite, command string, o scenario.Options, p *progress.Printer) (v results.Verify, failed []string) {
	p.Items(len(suite.Scenarios) + len(suite.Controls))
	v = suite.Run(ctx, command, o, func(name string, item verify.Item) {
		defer p.ItemDone()
		line, err := item()
		if err != nil {
			o.Logf("%s: %v", name, err)
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			return
		}
		o.Logf("%s", line)
	})
	p.Close()
	return v, failed
}
