package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/mirror"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/trust"
)

// mirrorOptions are the flags of `cascade mirror`.
type mirrorOptions struct {
	From  string
	To    string
	Root  string
	Kind  string
	State string
}

func init() {
	register(func() *cobra.Command {
		var o mirrorOptions
		cmd := &cobra.Command{
			Use:   "mirror --from URL --to DIR --root ROOT.json",
			Short: "Copy a signed repository, verified, into a directory any static HTTP server can serve",
			Long: `Mirror verifies the repository at URL against the trusted root (and, on
later runs, against what it copied before), downloads only the
content-addressed files it lacks, and writes timestamp.json last. Serve DIR
with nginx, a CDN or an object store and list its URL as a custom source.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, stop := signalContext(cmd.Context())
				defer stop()
				return runMirror(ctx, o, cmd.OutOrStdout())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.From, "from", "", "base URL of the source (origin, server, agent or another mirror)")
		f.StringVar(&o.To, "to", "", "directory to write the served tree into")
		f.StringVar(&o.Root, "root", "", "trusted root.json of the repository (needed on the first run)")
		f.StringVar(&o.Kind, "kind", "vendor", "repository to copy: vendor or site")
		f.StringVar(&o.State, "state", "", "directory of the mirror's trusted metadata (default DIR.trust, outside the served tree)")
		return cmd
	})
}

func runMirror(ctx context.Context, o mirrorOptions, out io.Writer) error {
	switch {
	case o.From == "" || o.To == "":
		return usageError(errors.New("mirror: --from and --to are required"))
	case !policy.SameURL(o.From, o.From):
		return usageError(fmt.Errorf("mirror: --from %q is not an absolute http(s) URL", o.From))
	case o.Kind != "vendor" && o.Kind != "site":
		return usageError(fmt.Errorf("mirror: --kind %q is neither vendor nor site", o.Kind))
	}
	if o.State == "" {
		o.State = strings.TrimRight(o.To, "/") + ".trust"
	}
	store, err := openMirrorTrust(o)
	if err != nil {
		return err
	}
	start := time.Now()
	bars := newBars(isTerminal(os.Stderr)) // large downloads, on a terminal only
	res, err := mirror.Copy(ctx, mirror.Options{Store: store, Source: trust.Source{Name: o.From, Base: o.From},
		Fetcher: fetch.New(fetch.Options{UserAgent: "cascade-mirror", Proxy: httpProxy()}), Dir: o.To, Progress: bars.file})
	bars.wait()
	if err != nil {
		return fmt.Errorf("mirror %s: %w", o.From, err)
	}
	state := "updated"
	if res.UpToDate {
		state = "up to date"
	}
	fmt.Fprintf(out, "%s: %s %s (timestamp %d, snapshot %d): %d targets, %d fetched (%d bytes) in %s\n",
		o.To, o.Kind, state, res.Timestamp, res.Snapshot, res.Targets, res.Fetched, res.Bytes, time.Since(start).Round(time.Millisecond))
	return nil
}

func openMirrorTrust(o mirrorOptions) (*trust.Store, error) {
	to := trust.Options{Kind: o.Kind, Now: time.Now}
	if _, err := os.Stat(o.State + "/current"); err == nil {
		return trust.Open(o.State, to)
	}
	if o.Root == "" {
		return nil, usageError(errors.New("mirror: --root is required on the first run"))
	}
	root, err := os.ReadFile(o.Root)
	if err != nil {
		return nil, usageError(fmt.Errorf("mirror: %w", err))
	}
	return trust.Init(o.State, root, to)
}
