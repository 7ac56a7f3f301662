package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/trust"
)

// originInitOptions are the arguments of `cascade origin init`.
type originInitOptions struct {
	Dir  string
	Bins int // 0: repo.DefaultBins
	Keep int // 0: repo.DefaultKeep
	// Deltas is how many previous versions deltas are made from; nil:
	// repo.DefaultDeltas. DeltaMaxRatio 0: repo.DefaultDeltaMaxRatio.
	Deltas        *int
	DeltaMaxRatio float64
	// Expiry periods; zero takes the repository defaults.
	RootExpiry, TargetsExpiry, SnapshotExpiry, TimestampExpiry time.Duration
	Now                                                        func() time.Time
}

func init() {
	originCommands = append(originCommands, func() *cobra.Command {
		o := originInitOptions{Now: time.Now}
		deltas := new(int)
		cmd := &cobra.Command{
			Use:   "init DIR",
			Short: "Create a vendor repository: keys and signed metadata",
			Long: `Init creates DIR (missing or empty) holding a new vendor repository:
private keys in DIR/keys (0600; keys/root.pem is only needed again to
re-sign the root, so keep it offline), the published tree in
DIR/published/vendor, and settings in DIR/repo.json. Endpoints are enrolled
with DIR/published/vendor/metadata/1.root.json.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Dir = args[0]
				if cmd.Flags().Changed("deltas") {
					o.Deltas = deltas
				}
				return runOriginInit(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		}
		f := cmd.Flags()
		f.IntVar(&o.Bins, "bins", 0, fmt.Sprintf("number of hash bins, a power of two (default %d)", repo.DefaultBins))
		f.IntVar(&o.Keep, "keep", 0, fmt.Sprintf("versions of each item to keep (default %d)", repo.DefaultKeep))
		f.IntVar(deltas, "deltas", repo.DefaultDeltas, "previous versions of each file a publish makes a delta from (0: no deltas)")
		f.Float64Var(&o.DeltaMaxRatio, "delta-max-ratio", 0, fmt.Sprintf("publish a delta only if smaller than this fraction of the file (default %v)", repo.DefaultDeltaMaxRatio))
		f.DurationVar(&o.RootExpiry, "root-expiry", 0, "root metadata validity (default 8760h)")
		f.DurationVar(&o.TargetsExpiry, "targets-expiry", 0, "targets and bins metadata validity (default 2160h)")
		f.DurationVar(&o.SnapshotExpiry, "snapshot-expiry", 0, "snapshot metadata validity (default 168h)")
		f.DurationVar(&o.TimestampExpiry, "timestamp-expiry", 0, "timestamp metadata validity (default 24h)")
		return cmd
	})
}

func runOriginInit(o originInitOptions, out, errOut io.Writer) error {
	for _, d := range []time.Duration{o.RootExpiry, o.TargetsExpiry, o.SnapshotExpiry, o.TimestampExpiry} {
		if d < 0 {
			return usageError(fmt.Errorf("origin init: expiry %v is negative", d))
		}
	}
	if o.Bins < 0 || o.Keep < 0 {
		return usageError(errors.New("origin init: --bins and --keep must not be negative"))
	}
	s := repo.Settings{
		Kind:   repo.Vendor,
		Bins:   o.Bins,
		Keep:   o.Keep,
		Deltas: o.Deltas, DeltaMaxRatio: o.DeltaMaxRatio,
		Expiry: repo.Periods{
			Root:      repo.Duration(o.RootExpiry),
			Targets:   repo.Duration(o.TargetsExpiry),
			Snapshot:  repo.Duration(o.SnapshotExpiry),
			Timestamp: repo.Duration(o.TimestampExpiry),
		},
	}
	r, err := repo.Init(o.Dir, repo.InitOptions{Settings: s, Options: originRepoOptions(o.Now, errOut)})
	if errors.Is(err, repo.ErrNotEmpty) || errors.Is(err, repo.ErrInvalidSettings) {
		return usageError(fmt.Errorf("origin init: %w", err))
	}
	if err != nil {
		return fmt.Errorf("origin init: %w", err)
	}
	st := r.Settings()
	fmt.Fprintf(out, "created vendor repository in %s (%d hash bins, keeping %d versions per item, deltas from the last %d)\n", r.Dir(), st.Bins, st.Keep, st.DeltasFrom())
	fmt.Fprintf(out, "  keys:         %s (move root.pem offline; publish and refresh do not need it)\n",
		filepath.Join(r.Dir(), "keys"))
	fmt.Fprintf(out, "  serve:        %s\n", filepath.Dir(r.PublishedDir()))
	fmt.Fprintf(out, "  trusted root: %s (enroll endpoints with it)\n",
		filepath.Join(r.PublishedDir(), "metadata", "1.root.json"))
	root, err := r.TrustedRoot()
	if err != nil {
		return fmt.Errorf("origin init: %w", err)
	}
	fmt.Fprintf(out, "  root sha256:  %s (cascade endpoint enroll --vendor-root-sha256)\n", trust.RootSHA256(root))
	return nil
}

// originRepoOptions are the repository options of the origin commands: the
// given clock, and warnings logged on stderr.
func originRepoOptions(now func() time.Time, errOut io.Writer) repo.Options {
	return repo.Options{
		Now:    now,
		Logger: slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// openOriginRepo opens the repository of an origin command; a directory that is
// not a repository is a usage error.
func openOriginRepo(op, dir string, now func() time.Time, errOut io.Writer) (*repo.Repo, error) {
	return openOriginRepoProgress(op, dir, now, errOut, nil)
}

// openOriginRepoProgress is openOriginRepo with a progress callback for
// the local files a publish copies (repo.Options.Progress).
func openOriginRepoProgress(op, dir string, now func() time.Time, errOut io.Writer, progress func(string, int64, int64)) (*repo.Repo, error) {
	ro := originRepoOptions(now, errOut)
	ro.Progress = progress
	r, err := repo.Open(dir, ro)
	if errors.Is(err, repo.ErrNotRepository) {
		return nil, usageError(fmt.Errorf("%s: %w", op, err))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return r, nil
}
