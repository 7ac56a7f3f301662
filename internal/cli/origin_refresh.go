package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// originRefreshOptions are the arguments of `cascade origin refresh`.
type originRefreshOptions struct {
	Dir string
	Now func() time.Time
}

func init() {
	originCommands = append(originCommands, func() *cobra.Command {
		o := originRefreshOptions{Now: time.Now}
		return &cobra.Command{
			Use:   "refresh DIR",
			Short: "Re-sign the timestamp, and any role near expiry",
			Long: `Refresh re-signs the timestamp with a new expiry, and the snapshot,
targets, bins and root when they are within their margin of expiry (the
root only if keys/root.pem is present). Run it more often than the
timestamp expiry (default 24h), for example hourly from a timer.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Dir = args[0]
				return runOriginRefresh(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		}
	})
}

func runOriginRefresh(ctx context.Context, o originRefreshOptions, out, errOut io.Writer) error {
	r, err := openOriginRepo("origin refresh", o.Dir, o.Now, errOut)
	if err != nil {
		return err
	}
	res, err := r.Refresh(ctx, o.Now())
	if err != nil {
		return fmt.Errorf("origin %w", err)
	}
	fmt.Fprintf(out, "refreshed %s: re-signed %s (timestamp version %d)\n",
		r.Dir(), originRoleSummary(res.Resigned), res.Timestamp)
	return nil
}

// originRoleSummary lists role names, counting the bins instead of naming
// each.
func originRoleSummary(roles []string) string {
	var names []string
	bins := 0
	for _, r := range roles {
		if strings.HasPrefix(r, "bins-") {
			bins++
			continue
		}
		names = append(names, r)
	}
	if bins > 0 {
		names = append(names, fmt.Sprintf("%d bins", bins))
	}
	return strings.Join(names, ", ")
}
