package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server/api"
)

func init() { serverCommands = append(serverCommands, serverSyncs) }

// serverSyncs is `cascade server syncs`: the sync log, newest first.
func serverSyncs() *cobra.Command {
	var limit int
	cmd := adminCommand("syncs", "List the sync log: the recent syncs from the origin, newest first", cobra.NoArgs,
		func(cmd *cobra.Command, c *adminConn, _ []string) error {
			var log []api.SyncLogEntry
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/syncs", q, nil, &log); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), log)
			}
			return writeSyncLog(cmd.OutOrStdout(), log)
		})
	cmd.Flags().IntVar(&limit, "limit", 20, "how many syncs (at most 1000)")
	return cmd
}

// writeSyncLog prints `cascade server syncs`: one line per sync.
func writeSyncLog(out io.Writer, log []api.SyncLogEntry) error {
	tw := newTable(out)
	fmt.Fprintln(tw, "FINISHED\tSTARTED\tRESULT\tFETCHED\tBYTES\tDEPLOYED\tSERVER\tERROR")
	for _, s := range log {
		server := s.Server
		if !s.Writer {
			server += " (mirror only)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d of %d\t%s\t%s\t%s\t%s\n", timeOr(s.Finished, "-"), timeOr(s.Started, "-"), s.Result,
			s.Fetched, s.Targets, agentBytes(s.Bytes), firstOf(versions(s.Deployed), "-"), server, firstOf(s.Error, "-"))
	}
	return tw.Flush()
}
