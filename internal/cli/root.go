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
// nearest to typed, if it is near enough to be a typing mistake: at most
// a third of the name's letters differ (at least one), or typed is a
// prefix of exactly that name. "" if none is.
func nearestSubcommand(cmd *cobra.Command, typed string) string {
	best, bestDist := "", -1
	for _, s := range cmd.Commands() {
		if !s.IsAvailableCommand() {
			continue
		}
		for _, name := range append([]string{s.Name()}, s.Aliases...) {
			d := editDistance(strings.ToLower(typed), name)
			if strings.HasPrefix(name, strings.ToLower(typed)) && typed != "" {
				d = min(d, 1)
			}
			if d <= max(1, len(name)/3) && (bestDist < 0 || d < bestDist) {
				best, bestDist = s.Name(), d
			}
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent letters each
// count one ("sttaus" is 1 from "status").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
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
			fmt.Fprintf(stderr, "cascade: %v\n", err)
		}
		return ee.Code
	}
	fmt.Fprintf(stderr, "cascade: %v\n", err)
	return ExitFailed
}
