// Package cli holds cascade's command-line interface: one file per
// subcommand, each with an options struct and a run function that tests
// call directly. cmd/cascade only calls Main.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// ExitError carries a process exit status out of a subcommand together with
// the one-line message printed on stderr.
type ExitError struct {
	Code int
	Err  error
	// Reported means the command already printed its error(s).
	Reported bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks an error in the user's input (flags, policy): status 2.
func usageError(err error) error { return &ExitError{Code: 2, Err: err} }

// subcommands registers the constructors of every top-level subcommand.
// Each subcommand file adds itself in an init function, so that files can be
// added without touching this one.
var subcommands []func() *cobra.Command

func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// NewRoot builds the cascade command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "cascade",
		Short:         "Signed update distribution through servers and update agents",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	return root
}

// Main runs cascade with args and returns the process exit status. Errors
// are printed as a single line on stderr.
func Main(args []string, stdout, stderr io.Writer) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if !ee.Reported {
			fmt.Fprintf(stderr, "cascade: %v\n", err)
		}
		return ee.Code
	}
	fmt.Fprintf(stderr, "cascade: %v\n", err)
	return 1
}
