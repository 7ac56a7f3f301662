package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server/api"
)

func init() {
	serverCommands = append(serverCommands, serverSync, serverStatus, serverNotify, func() *cobra.Command {
		cmd := &cobra.Command{Use: "components", Short: "List components and control their deployment"}
		cmd.AddCommand(serverComponentsList(), serverHold(true), serverHold(false), serverDeploy())
		return cmd
	}, func() *cobra.Command {
		cmd := &cobra.Command{Use: "notifications", Short: "List notifications and their delivery progress"}
		cmd.AddCommand(serverNotificationsList(), serverNotificationShow())
		return cmd
	}, serverReports)
}

func serverSync() *cobra.Command {
	cmd := serverSyncCommand()
	// The server answers when the sync is over: a large origin takes a while.
	f := cmd.Flags().Lookup("timeout")
	f.DefValue = "30m0s"
	_ = f.Value.Set(f.DefValue)
	return cmd
}

func serverSyncCommand() *cobra.Command {
	return adminCommand("sync", "Mirror the origin now (new components deploy unless held, and endpoints are notified)",
		cobra.NoArgs, func(cmd *cobra.Command, c *adminConn, _ []string) error {
			var res api.SyncResult
			stop := c.showSyncProgress(cmd.Context(), !c.JSON && isTerminal(cmd.ErrOrStderr()))
			err := c.call(cmd.Context(), http.MethodPost, "/api/v1/content/sync", nil, nil, &res)
			stop()
			if err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			state := "updated"
			if res.UpToDate {
				state = "up to date"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "origin %s (timestamp %d): %d targets, %d fetched (%d bytes)\n", state, res.Timestamp, res.Targets, res.Fetched, res.Bytes)
			if len(res.Deployed) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "deployed %s\n", versions(res.Deployed))
			}
			if res.Notification != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "notification %s sent\n", res.Notification)
			}
			return nil
		})
}

func serverStatus() *cobra.Command {
	return adminCommand("status", "Show the server's state: URL, key fingerprint, vendor root hash, origin, database, site repository, last sync",
		cobra.NoArgs, func(cmd *cobra.Command, c *adminConn, _ []string) error {
			var st api.Status
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/status", nil, nil, &st); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return writeServerStatus(cmd.OutOrStdout(), st)
		})
}

func serverComponentsList() *cobra.Command {
	return adminCommand("list", "List components: newest synced and deployed versions, holds", cobra.NoArgs,
		func(cmd *cobra.Command, c *adminConn, _ []string) error {
			var cs []api.Component
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/content/components", nil, nil, &cs); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), cs)
			}
			return writeComponents(cmd.OutOrStdout(), cs)
		})
}

func serverHold(hold bool) *cobra.Command {
	use, short, verb := "hold NAME", "Hold a component at its deployed version", "hold"
	if !hold {
		use, short, verb = "release NAME", "Release a held component: deploy its newest version and notify endpoints", "release"
	}
	return adminCommand(use, short, cobra.ExactArgs(1), func(cmd *cobra.Command, c *adminConn, args []string) error {
		var x api.Component
		if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/content/components/"+pathEscape(args[0])+"/"+verb, nil, nil, &x); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: deployed %s, held %v\n", x.Name, x.Deployed, x.Held)
		return nil
	})
}

func serverDeploy() *cobra.Command {
	return adminCommand("deploy NAME VERSION", "Deploy a mirrored version of a component (a rollback, or past a hold)",
		cobra.ExactArgs(2), func(cmd *cobra.Command, c *adminConn, args []string) error {
			var x api.Component
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/content/components/"+pathEscape(args[0])+"/deploy", nil,
				api.Deploy{Version: args[1]}, &x); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: deployed %s, held %v\n", x.Name, x.Deployed, x.Held)
			return nil
		})
}

func serverNotify() *cobra.Command {
	var domain string
	cmd := adminCommand("notify [--domain D]", "Notify every endpoint of the deployed components, update agents first",
		cobra.NoArgs, func(cmd *cobra.Command, c *adminConn, _ []string) error {
			var n api.Notification
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/notifications", nil, api.NotifyRequest{Domain: domain}, &n); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "notification %s: %s\n", n.ID, versions(n.Versions))
			return nil
		})
	cmd.Flags().StringVar(&domain, "domain", "", "notify only this domain's endpoints")
	return cmd
}

func serverNotificationsList() *cobra.Command {
	return adminCommand("list", "List recent notifications", cobra.NoArgs, func(cmd *cobra.Command, c *adminConn, _ []string) error {
		var ns []api.Notification
		if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/notifications", nil, nil, &ns); err != nil {
			return err
		}
		if c.JSON {
			return printJSON(cmd.OutOrStdout(), ns)
		}
		return writeNotifications(cmd.OutOrStdout(), ns)
	})
}

func serverNotificationShow() *cobra.Command {
	return adminCommand("show ID", "Show a notification and its delivery counts per role and state", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *adminConn, args []string) error {
			var n api.Notification
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/notifications/"+pathEscape(args[0]), nil, nil, &n); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), n)
			}
			return writeNotification(cmd.OutOrStdout(), n)
		})
}

func serverReports() *cobra.Command {
	var endpointID string
	var limit int
	cmd := adminCommand("reports [--endpoint ID]", "List update reports, newest first", cobra.NoArgs,
		func(cmd *cobra.Command, c *adminConn, _ []string) error {
			var rs []api.Report
			q := url.Values{"endpoint": {endpointID}, "limit": {fmt.Sprint(limit)}}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/reports", q, nil, &rs); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), rs)
			}
			return writeReports(cmd.OutOrStdout(), rs)
		})
	cmd.Flags().StringVar(&endpointID, "endpoint", "", "only this endpoint's reports")
	cmd.Flags().IntVar(&limit, "limit", 50, "how many reports")
	return cmd
}

// syncPoll is how often `server sync` reads the progress of the sync it
// asked for.
const syncPoll = 500 * time.Millisecond

// showSyncProgress draws, when interactive, a progress bar of the
// server's running sync (api.Status.Syncing) until the returned function
// is called.
func (c *adminConn) showSyncProgress(ctx context.Context, interactive bool) (stop func()) {
	if !interactive {
		return func() {}
	}
	cl, err := c.client()
	if err != nil {
		return func() {} // the sync call reports it
	}
	bars := newBars(true)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(syncPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var st api.Status
			if cl.Call(ctx, http.MethodGet, "/api/v1/status", nil, nil, &st) == nil && st.Syncing != nil {
				bars.file("sync from the origin", st.Syncing.BytesDone, st.Syncing.BytesTotal)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		bars.wait()
	}
}
