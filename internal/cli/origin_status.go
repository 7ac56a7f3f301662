package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/trust"
)

// originStatusOptions are the arguments of `cascade origin status`.
type originStatusOptions struct {
	Dir string
	Now func() time.Time
}

func init() {
	originCommands = append(originCommands, func() *cobra.Command {
		o := originStatusOptions{Now: time.Now}
		return &cobra.Command{
			Use:   "status DIR",
			Short: "Show every role's version and expiry, warning before expiry",
			Long: `Status prints the version and expiry of the root, targets, bins,
snapshot and timestamp of the repository in DIR, then every published
delta with its size and the size of the file it rebuilds. A role within its margin
of expiry is warned about on stderr (exit status 0); if any role has
already expired, clients reject the repository and the exit status is 1.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Dir = args[0]
				return runOriginStatus(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		}
	})
}

func runOriginStatus(o originStatusOptions, out, errOut io.Writer) error {
	r, err := openOriginRepo("origin status", o.Dir, o.Now, errOut)
	if err != nil {
		return err
	}
	now := o.Now()
	st, err := r.Status(now)
	if err != nil {
		return fmt.Errorf("origin %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ROLE\tVERSION\tEXPIRES\tIN\tSTATE\n")
	for _, rs := range st.Roles {
		role := rs.Role
		if rs.Count > 1 {
			role = fmt.Sprintf("%s (%d)", rs.Role, rs.Count)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", role, rs.Version,
			rs.Expires.UTC().Format(time.RFC3339), rs.Expires.Sub(now).Round(time.Minute), rs.Health)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("origin status: %w", err)
	}
	if err := printOriginDeltas(out, st.Deltas); err != nil {
		return err
	}
	root, err := r.TrustedRoot()
	if err != nil {
		return fmt.Errorf("origin status: %w", err)
	}
	fmt.Fprintf(out, "trusted root 1.root.json: %s (cascade endpoint enroll --vendor-root-sha256)\n", trust.RootSHA256(root))
	for _, w := range st.Warnings() {
		fmt.Fprintf(errOut, "cascade: warning: %s\n", w)
	}
	if st.Expired() {
		return &ExitError{Code: 1, Err: fmt.Errorf("origin status: %s: metadata has expired; clients reject the repository", r.Dir())}
	}
	return nil
}

// printOriginDeltas lists the published deltas: the file they rebuild,
// the version they apply to, their size and the full file's.
func printOriginDeltas(out io.Writer, deltas []repo.DeltaInfo) error {
	if len(deltas) == 0 {
		fmt.Fprintln(out, "no deltas published")
		return nil
	}
	var n, full int64
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "DELTA\tFROM\tSIZE\tFULL\tRATIO\n")
	for _, d := range deltas {
		fmt.Fprintf(tw, "%s/%s/%s/%s\t%s\t%d\t%d\t%.3f\n", d.Category, d.Name, d.Version, d.File, d.Base,
			d.Length, d.ResultLength, float64(d.Length)/float64(max(d.ResultLength, 1)))
		n += d.Length
		full += d.ResultLength
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("origin status: %w", err)
	}
	fmt.Fprintf(out, "%d deltas: %d bytes, rebuilding %d bytes of files\n", len(deltas), n, full)
	return nil
}
