package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
)

// endpointUpdateOptions are the flags of `cascade endpoint update`.
type endpointUpdateOptions struct {
	Config string
	Once   bool // run in this process
	Now    bool // ask the running daemon
	JSON   bool
}

func init() {
	endpointCommands = append(endpointCommands, func() *cobra.Command {
		var o endpointUpdateOptions
		cmd := &cobra.Command{
			Use:   "update (--once | --now) --config FILE [--json]",
			Short: "Update now: in this process (--once) or through the running daemon (--now)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, stop := signalContext(cmd.Context())
				defer stop()
				return runEndpointUpdate(ctx, o, cmd.OutOrStdout())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.Config, "config", "", "endpoint configuration file (required)")
		f.BoolVar(&o.Once, "once", false, "run one update in this process (the daemon must not be running)")
		f.BoolVar(&o.Now, "now", false, "ask the running daemon to update now")
		f.BoolVar(&o.JSON, "json", false, "print the report as JSON")
		cmd.MarkFlagRequired("config")
		return cmd
	})
}

func runEndpointUpdate(ctx context.Context, o endpointUpdateOptions, out io.Writer) error {
	if o.Once == o.Now {
		return usageError(errors.New("endpoint update: give exactly one of --once and --now"))
	}
	var rep *report.Report
	if o.Now {
		cfg, err := endpoint.LoadConfig(o.Config)
		if err != nil {
			return usageError(err)
		}
		if rep, err = endpoint.RequestUpdate(ctx, cfg.DataDir); err != nil {
			return err
		}
	} else {
		bars := newBars(!o.JSON && term.IsTerminal(int(os.Stderr.Fd())))
		_, ep, err := openEndpoint(o.Config, quietLogger(), endpoint.Options{Progress: bars.progress})
		if err != nil {
			return err
		}
		defer ep.Close()
		rep, err = ep.Update(ctx, plan.Manual, nil)
		bars.wait()
		if err != nil {
			return err
		}
	}
	if err := printReport(out, rep, o.JSON); err != nil {
		return err
	}
	if rep.Result == report.Failed {
		return &ExitError{Code: 1, Err: errors.New("update failed"), Reported: true}
	}
	return nil
}

// printReport writes a report as JSON, or as its first line and a table
// with a row per category, then the failed attempts and errors.
func printReport(out io.Writer, rep *report.Report, asJSON bool) error {
	if asJSON {
		return printJSON(out, rep)
	}
	fmt.Fprintf(out, "run %s (%s): %s in %s\n", rep.ID, rep.Trigger, rep.Result, rep.Finished.Sub(rep.Started).Round(1e6))
	tw := newTable(out)
	fmt.Fprintln(tw, "CATEGORY\tRESULT\tSOURCE\tBYTES\tVERSIONS")
	var notes []string
	for _, c := range rep.Categories {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Category, c.Result, dash(sourceURL(c.Source, c.URL)), agentBytes(c.Bytes), versionChange(c.Before, c.After))
		for _, a := range c.Attempts {
			notes = append(notes, fmt.Sprintf("  %s: %s: %s: %s", c.Category, sourceURL(a.Source, a.URL), a.Class, a.Error))
		}
		if c.Error != "" {
			notes = append(notes, fmt.Sprintf("  %s: %s", c.Category, c.Error))
		}
		if c.Hook != nil && c.Hook.Error != "" {
			notes = append(notes, fmt.Sprintf("  %s: hook: %s", c.Category, c.Hook.Error))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, n := range notes {
		fmt.Fprintln(out, n)
	}
	return nil
}

// sourceURL names a report's source, with its URL when it has several
// (the server of a site with several management servers).
func sourceURL(source, url string) string {
	if url == "" {
		return source
	}
	return source + " " + url
}
