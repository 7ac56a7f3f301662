package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/repo"
)

// originPublishOptions are the arguments of `cascade origin publish`.
type originPublishOptions struct {
	Dir       string
	Component string // exactly one of Component and Program
	Program   string
	Version   string
	Keep      int // 0: the repository's setting
	Files     []string
	Now       func() time.Time
}

func init() {
	originCommands = append(originCommands, func() *cobra.Command {
		o := originPublishOptions{Now: time.Now}
		cmd := &cobra.Command{
			Use:   "publish DIR (--component NAME | --program NAME) --version V FILE...",
			Short: "Publish a new version of a component or program",
			Long: `Publish adds a version of a component or program to the repository in
DIR: the files become targets components/NAME/V/FILE (or programs/...),
the category index is rewritten, the affected bins, snapshot and timestamp
are re-signed, and versions beyond --keep are pruned. The version must be
newer than every version of the item published before. Readers see the
old or the new state, never a mix.`,
			Args: cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Dir, o.Files = args[0], args[1:]
				return runOriginPublish(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.Component, "component", "", "publish the component NAME")
		f.StringVar(&o.Program, "program", "", "publish the program NAME")
		f.StringVar(&o.Version, "version", "", "the new version (required)")
		f.IntVar(&o.Keep, "keep", 0, "versions of this item to keep (default: the repository's setting)")
		return cmd
	})
}

// originPublishItem turns the options into the item to publish.
func originPublishItem(o originPublishOptions) (repo.Item, error) {
	var it repo.Item
	switch {
	case o.Component != "" && o.Program != "":
		return it, errors.New("give either --component or --program, not both")
	case o.Component != "":
		it.Category, it.Name = "components", o.Component
	case o.Program != "":
		it.Category, it.Name = "programs", o.Program
	default:
		return it, errors.New("--component NAME or --program NAME is required")
	}
	if o.Version == "" {
		return it, errors.New("--version is required")
	}
	if o.Keep < 0 {
		return it, fmt.Errorf("--keep %d is negative", o.Keep)
	}
	if len(o.Files) == 0 {
		return it, errors.New("at least one FILE is required")
	}
	it.Version, it.Keep = o.Version, o.Keep
	for _, p := range o.Files {
		it.Files = append(it.Files, repo.File{Path: p})
	}
	return it, nil
}

func runOriginPublish(ctx context.Context, o originPublishOptions, out, errOut io.Writer) error {
	it, err := originPublishItem(o)
	if err != nil {
		return usageError(fmt.Errorf("origin publish: %w", err))
	}
	bars := newBars(isTerminal(errOut)) // large files, on a terminal only
	r, err := openOriginRepoProgress("origin publish", o.Dir, o.Now, errOut, bars.file)
	if err != nil {
		return err
	}
	res, err := r.Publish(ctx, it)
	bars.wait()
	if errors.Is(err, repo.ErrInvalidItem) || errors.Is(err, repo.ErrVersionExists) ||
		errors.Is(err, repo.ErrVersionOlder) {
		return usageError(fmt.Errorf("origin %w", err))
	}
	if err != nil {
		return fmt.Errorf("origin %w", err)
	}
	fmt.Fprintf(out, "published %s/%s %s: %s (timestamp version %d)\n",
		it.Category, it.Name, it.Version, originFileCount(len(it.Files)), res.Timestamp)
	if len(res.Deltas) > 0 {
		var n, full int64
		for _, d := range res.Deltas {
			n += d.Length
			full += d.ResultLength
		}
		fmt.Fprintf(out, "made %d deltas from earlier versions: %d bytes, against %d for the full files\n", len(res.Deltas), n, full)
	}
	if len(res.Pruned) > 0 {
		fmt.Fprintf(out, "pruned %s of versions beyond the last %d\n", originFileCount(len(res.Pruned)), originKeep(r, it))
	}
	return nil
}

func originKeep(r *repo.Repo, it repo.Item) int {
	if it.Keep > 0 {
		return it.Keep
	}
	return r.Settings().Keep
}

func originFileCount(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}
