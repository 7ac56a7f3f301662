package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/agent"
	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/plan"
)

// endpointStatusOptions are the flags of `cascade endpoint status`.
type endpointStatusOptions struct {
	Config string
	JSON   bool
}

func init() {
	endpointCommands = append(endpointCommands, func() *cobra.Command {
		var o endpointStatusOptions
		cmd := &cobra.Command{
			Use:   "status --config FILE [--json]",
			Short: "Show installed versions and the last update report",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runEndpointStatus(o, cmd.OutOrStdout())
			},
		}
		cmd.Flags().StringVar(&o.Config, "config", "", "endpoint configuration file (required)")
		cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
		cmd.MarkFlagRequired("config")
		return cmd
	})
	endpointCommands = append(endpointCommands, func() *cobra.Command {
		var config string
		cmd := &cobra.Command{
			Use:   "rollback CATEGORY --config FILE",
			Short: "Switch a category back to its previous installed version",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runEndpointRollback(cmd, config, args[0])
			},
		}
		cmd.Flags().StringVar(&config, "config", "", "endpoint configuration file (required)")
		cmd.MarkFlagRequired("config")
		return cmd
	})
}

func runEndpointStatus(o endpointStatusOptions, out io.Writer) error {
	cfg, err := endpoint.LoadConfig(o.Config)
	if err != nil {
		return usageError(err)
	}
	st, err := endpoint.ReadStatus(cfg)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(out, "endpoint %s (%s)\n", st.ID, st.Role)
	for _, c := range st.Installed {
		fmt.Fprintf(out, "  %s\n", formatCategoryStatus(c))
	}
	if st.Role == plan.RoleAgent {
		printAgentStatus(out, st.Agent)
	}
	if st.LastReport == nil {
		fmt.Fprintln(out, "no update run yet")
		return nil
	}
	fmt.Fprintln(out, "last update:")
	return printReport(out, st.LastReport, false)
}

func runEndpointRollback(cmd *cobra.Command, config, name string) error {
	cat, err := category.Parse(name)
	if err != nil {
		return usageError(err)
	}
	cfg, err := endpoint.LoadConfig(config)
	if err != nil {
		return usageError(err)
	}
	res, err := endpoint.RequestRollback(cmd.Context(), cfg.DataDir, cat)
	if errors.Is(err, endpoint.ErrNoDaemon) {
		var ep *endpoint.Endpoint
		if _, ep, err = openEndpoint(config, quietLogger(), endpoint.Options{}); err != nil {
			return err
		}
		defer ep.Close()
		res, err = ep.Rollback(cmd.Context(), cat)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s rolled back to %s\n", cat, res.Current.ID)
	return nil
}

// formatCategoryStatus is one line: category, current and previous
// versions with their items.
func formatCategoryStatus(c install.CategoryStatus) string {
	s := fmt.Sprintf("%-15s ", c.Category)
	if c.Current == nil {
		return s + "not installed"
	}
	s += fmt.Sprintf("%s %s installed %s", c.Current.ID, items(c.Current.Items), c.Current.InstalledAt.Format("2006-01-02 15:04:05Z07:00"))
	if c.Previous != nil {
		s += fmt.Sprintf(" (previous %s %s)", c.Previous.ID, items(c.Previous.Items))
	}
	if c.HookPending {
		s += " [hook pending]"
	}
	return s
}

func items(its []install.Item) string {
	parts := make([]string, len(its))
	for i, it := range its {
		parts[i] = it.Name + " " + it.Version
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// printAgentStatus prints what an update agent serves and to how many.
func printAgentStatus(out io.Writer, st *agent.Status) {
	if st == nil {
		fmt.Fprintln(out, "update agent: not serving yet (no status file: start `cascade endpoint run`)")
		return
	}
	scheme := "http"
	if st.TLS {
		scheme = "https"
	}
	fmt.Fprintf(out, "update agent %s serving on %s (%s)\n", st.ID, st.Listen, scheme)
	kinds := make([]string, 0, len(st.Repositories))
	for k := range st.Repositories {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		r := st.Repositories[k]
		fmt.Fprintf(out, "  %-7s timestamp %d, snapshot %d", k, r.Timestamp, r.Snapshot)
		if r.Source != "" {
			fmt.Fprintf(out, ", from %s at %s", r.Source, r.Refreshed.Format("2006-01-02 15:04:05Z07:00"))
		}
		fmt.Fprintln(out)
		cats := make([]string, 0, len(r.Items))
		for c := range r.Items {
			cats = append(cats, c)
		}
		slices.Sort(cats)
		for _, c := range cats {
			fmt.Fprintf(out, "          %s: %s\n", c, agentItemVersions(r.Items[c]))
		}
		if r.Error != "" {
			fmt.Fprintf(out, "          last refresh failed at %s: %s\n", r.ErrorAt.Format("2006-01-02 15:04:05Z07:00"), r.Error)
		}
	}
	since := "start"
	if !st.Started.IsZero() {
		since = st.Started.Format("2006-01-02 15:04:05Z07:00")
	}
	fmt.Fprintf(out, "  since %s: %d clients, %d requests (%d not modified, %d turned away busy), %s served, %d upstream fetches, peak %d downloads at once\n",
		since, st.Clients, st.Requests, st.NotModified, st.Unavailable, agentBytes(st.BytesServed), st.UpstreamFetches, st.PeakDownloads)
}

// agentItemVersions lists items as "name version, ..." sorted by name.
func agentItemVersions(items map[string]string) string {
	if len(items) == 0 {
		return "(none)"
	}
	names := make([]string, 0, len(items))
	for n := range items {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = n + " " + items[n]
	}
	return strings.Join(names, ", ")
}

// agentBytes formats a byte count with a binary unit.
func agentBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
