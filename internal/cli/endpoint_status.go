package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/agent"
	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
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
		return printJSON(out, endpointStatusView(st))
	}
	fmt.Fprintf(out, "endpoint %s (%s)\n\n", st.ID, st.Role)
	tw := newTable(out)
	fmt.Fprintln(tw, "CATEGORY\tINSTALLED\tSINCE\tPREVIOUS")
	for _, c := range st.Installed {
		fmt.Fprintln(tw, formatCategoryStatus(c))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("endpoint status: write: %w", err)
	}
	if st.Role == plan.RoleAgent {
		fmt.Fprintln(out)
		printAgentStatus(out, st.Agent)
	}
	fmt.Fprintln(out)
	if st.LastReport == nil {
		fmt.Fprintln(out, "no update run yet")
		return nil
	}
	fmt.Fprint(out, "last update: ")
	return printReport(out, st.LastReport, false)
}

// endpointStatusJSON is `cascade endpoint status --json`: snake_case keys
// throughout.
type endpointStatusJSON struct {
	ID         string         `json:"id"`
	Role       plan.Role      `json:"role"`
	Installed  []categoryJSON `json:"installed"`
	LastReport *report.Report `json:"last_report,omitempty"`
	Agent      *agent.Status  `json:"agent,omitempty"`
}

// categoryJSON is one installed category.
type categoryJSON struct {
	Category      category.Category `json:"category"`
	Current       *versionJSON      `json:"current,omitempty"`
	Previous      *versionJSON      `json:"previous,omitempty"`
	HookPending   bool              `json:"hook_pending"`
	SwitchPending bool              `json:"switch_pending"`
}

// versionJSON is one installed version of a category.
type versionJSON struct {
	ID          string         `json:"id"`
	InstalledAt time.Time      `json:"installed_at"`
	Items       []install.Item `json:"items"`
	Files       int            `json:"files"`
	Dir         string         `json:"dir"`
}

func endpointStatusView(st *endpoint.Status) endpointStatusJSON {
	v := endpointStatusJSON{ID: st.ID, Role: st.Role, Installed: []categoryJSON{}, LastReport: st.LastReport, Agent: st.Agent}
	version := func(x *install.Version) *versionJSON {
		if x == nil {
			return nil
		}
		return &versionJSON{ID: x.ID, InstalledAt: x.InstalledAt, Items: x.Items, Files: len(x.Files), Dir: x.Dir}
	}
	for _, c := range st.Installed {
		v.Installed = append(v.Installed, categoryJSON{Category: c.Category, Current: version(c.Current), Previous: version(c.Previous),
			HookPending: c.HookPending, SwitchPending: c.SwitchPending})
	}
	return v
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

// formatCategoryStatus is one row of the installed table: category,
// current items, when they were installed, the rollback target's items.
func formatCategoryStatus(c install.CategoryStatus) string {
	if c.Current == nil {
		return fmt.Sprintf("%s\tnot installed\t-\t-", c.Category)
	}
	cur := items(c.Current.Items)
	if c.HookPending {
		cur += " [hook pending]"
	}
	prev := "-"
	if c.Previous != nil {
		prev = items(c.Previous.Items)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s", c.Category, cur, timeOr(c.Current.InstalledAt, "-"), prev)
}

// items renders installed items as "engine 7.2, pattern 17.736.00".
func items(its []install.Item) string {
	m := make(map[string]string, len(its))
	for _, it := range its {
		m[it.Name] = it.Version
	}
	return versions(m)
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
