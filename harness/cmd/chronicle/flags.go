package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/chronicleweaver/chronicleweaver/internal/suggest"
)

// usageError is a command line the command cannot run: main exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parse parses args into fs. -h prints the flags and exits; a flag fs does
// not define is answered with the closest ones it does.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fmt.Printf("Flags of chronicle %s:\n", fs.Name())
		fs.PrintDefaults()
		os.Exit(0)
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		near := suggest.Closest(name, names, 3)
		for i, n := range near {
			near[i] = "--" + n
		}
		msg = fmt.Sprintf("unknown flag -%s", name)
		if len(near) > 0 {
			msg += " (did you mean " + strings.Join(near, " or ") + "?)"
		}
	}
	return usageError{fmt.Errorf("%s: %s; chronicle %s -h lists the flags", fs.Name(), msg, fs.Name())}
}

// parseNoArgs is parse for commands that take flags only.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected arguments %q; chronicle %s -h lists the flags", fs.Name(), fs.Args(), fs.Name())}
	}
	return nil
}
