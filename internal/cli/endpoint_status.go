package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/install"
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
