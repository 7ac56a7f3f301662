// Package cli holds cascade's command-line interface: one file per
// subcommand, each with an options struct and a run function that tests
// call directly. cmd/cascade only calls Main.
package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cascade-update/cascade/internal/suggest"
)

// The process exit statuses of every command (README.md, "Exit status").
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitFailed: the operation failed (a server unreachable, an update
	// that failed, a file that could not be written).
	ExitFailed = 1
	// ExitUsage: the command line or an input file (policy, configuration)
	// is invalid; nothing was done.
	ExitUsage = 2
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
func usageError(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

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
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictCommandLine(root)
	// A command group runs only to refuse a wrong subcommand: its usage
	// shows "cascade server [command]", not a line of its own.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "Usage:{{if .Runnable}}",
		"Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	return root
}

// strictCommandLine makes every command of the tree under c treat a wrong
// command line as one (exit status 2): a command group given an unknown
// subcommand names it and suggests the nearest one, a group given none
// says so, wrong positional arguments and missing required flags are usage
// errors ("--config is required").
func strictCommandLine(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictCommandLine(sub)
	}
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = groupRun
		return
	}
	if !c.Runnable() {
		return
	}
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageError(fmt.Errorf("%s%w (see `%s --help`)", where(cmd), err, cmd.CommandPath()))
			}
			return nil
		}
	}
	pre := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, a []string) error {
		if err := requiredFlags(cmd); err != nil {
			return err
		}
		if pre != nil {
			return pre(cmd, a)
		}
		return nil
	}
}

// groupRun runs a command group: it only dispatches to its subcommands,
// so any argument left is a mistyped subcommand.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		cmd.SetOut(cmd.ErrOrStderr())
		if err := cmd.Help(); err != nil {
			return err
		}
		return usageError(fmt.Errorf("%smissing subcommand (the commands are listed above)", where(cmd)))
	}
	msg := fmt.Sprintf("%sunknown command %q", where(cmd), args[0])
	if near := nearestSubcommand(cmd, args[0]); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	} else {
		msg += fmt.Sprintf("; the commands are %s", strings.Join(subcommandNames(cmd), ", "))
	}
	return usageError(errors.New(msg))
}

// subcommandNames are the names of cmd's visible subcommands, sorted.
func subcommandNames(cmd *cobra.Command) []string {
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	slices.Sort(names)
	return names
}

// nearestSubcommand is the subcommand of cmd whose name (or alias) is
// near enough to typed to be a typing mistake (suggest.Nearest), or "".
func nearestSubcommand(cmd *cobra.Command, typed string) string {
	var names []string
	owner := map[string]string{}
	for _, s := range cmd.Commands() {
		if !s.IsAvailableCommand() {
			continue
		}
		for _, n := range append([]string{s.Name()}, s.Aliases...) {
			names = append(names, n)
			owner[n] = s.Name()
		}
	}
	return owner[suggest.Nearest(typed, names)]
}

// requiredFlags is a usage error naming the first flag marked required
// that the command line does not give ("--config is required").
func requiredFlags(cmd *cobra.Command) error {
	var missing []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if req := f.Annotations[cobra.BashCompOneRequiredFlag]; len(req) > 0 && req[0] == "true" && !f.Changed {
			missing = append(missing, "--"+f.Name)
		}
	})
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usageError(fmt.Errorf("%s%s is required", where(cmd), missing[0]))
	default:
		return usageError(fmt.Errorf("%s%s are required", where(cmd), strings.Join(missing, " and ")))
	}
}

// where prefixes a message about cmd's command line: "server endpoint: "
// ("" for the root, whose name Main prints first).
func where(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return ""
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + ": "
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
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if !ee.Reported {
			printError(stderr, err)
		}
		return ee.Code
	}
	printError(stderr, err)
	return ExitFailed
}

// problemLister is an error listing several problems (of a configuration
// file), one line each.
type problemLister interface {
	error
	ProblemLines() []string
}

// printError prints err on one line, or, if it lists several problems,
// each problem on its own line after the same context
// ("cascade: endpoint config a.yaml: line 3: ...").
func printError(stderr io.Writer, err error) {
	var pl problemLister
	if errors.As(err, &pl) && len(pl.ProblemLines()) > 1 {
		context, found := strings.CutSuffix(err.Error(), pl.Error())
		if found {
			for _, line := range pl.ProblemLines() {
				fmt.Fprintf(stderr, "cascade: %s%s\n", context, line)
			}
			return
		}
	}
	fmt.Fprintf(stderr, "cascade: %v\n", err)
}
