package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
)

// The human output of the status and listing commands: tables with a
// header line and aligned columns, versions as "engine 7.2, pattern
// 17.736.00", times in RFC 3339. --json prints the same data for machines,
// with snake_case keys.

// newTable returns a writer aligning tab-separated cells; Flush it.
func newTable(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
}

// versions renders item versions as "engine 7.2, pattern 17.736.00",
// sorted by name; "-" if there are none.
func versions(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, name+" "+m[name])
	}
	return strings.Join(parts, ", ")
}

// versionChange renders what a run changed: "pattern 17.735.00 ->
// 17.736.00, engine 7.2" (an item whose version did not change shows it
// once; a new one shows "(new)").
func versionChange(before, after map[string]string) string {
	names := slices.Sorted(maps.Keys(after))
	for n := range before {
		if _, ok := after[n]; !ok {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(names))
	for _, n := range names {
		b, hadB := before[n]
		a, hasA := after[n]
		switch {
		case !hasA:
			parts = append(parts, n+" "+b+" (removed)")
		case !hadB && len(before) > 0:
			parts = append(parts, n+" "+a+" (new)")
		case !hadB || a == b:
			parts = append(parts, n+" "+a)
		default:
			parts = append(parts, n+" "+b+" -> "+a)
		}
	}
	return strings.Join(parts, ", ")
}

// timeOr formats t in RFC 3339, or none if t is zero.
func timeOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// writeServerStatus prints `cascade server status`: one aligned line per
// property (the first word is the property, for scripts: awk '$1 ==
// "fingerprint" {print $2}').
func writeServerStatus(out io.Writer, st api.Status) error {
	tw := newTable(out)
	fmt.Fprintf(tw, "url\t%s\n", st.URL)
	fmt.Fprintf(tw, "fingerprint\t%s\n", dash(st.Fingerprint))
	fmt.Fprintf(tw, "vendor root\t%s\n", dash(st.VendorRootSHA256))
	fmt.Fprintf(tw, "origin\t%s\n", st.Origin)
	fmt.Fprintf(tw, "database\t%s\n", st.Database)
	fmt.Fprintf(tw, "site\ttimestamp version %d, expires %s\n", st.Site.Timestamp, timeOr(st.Site.Expires, "-"))
	for _, w := range st.Site.Warnings {
		fmt.Fprintf(tw, "warning\t%s\n", w)
	}
	fmt.Fprintf(tw, "last sync\t%s\n", syncSummary(st.LastSync))
	fmt.Fprintf(tw, "connected\t%d endpoints\n", st.Connected)
	fmt.Fprintf(tw, "writer\t%s\n", yesNo(st.Writer))
	return tw.Flush()
}

// syncSummary is one line about a sync run.
func syncSummary(s *api.SyncResult) string {
	if s == nil {
		return "none yet"
	}
	line := timeOr(s.Finished, timeOr(s.Started, "-")) + ": "
	switch {
	case s.Error != "":
		return line + "failed: " + s.Error
	case s.UpToDate:
		line += fmt.Sprintf("up to date (timestamp %d, %d targets)", s.Timestamp, s.Targets)
	default:
		line += fmt.Sprintf("updated (timestamp %d, %d targets, %d fetched, %s)", s.Timestamp, s.Targets, s.Fetched, agentBytes(s.Bytes))
	}
	if len(s.Deployed) > 0 {
		line += "; deployed " + versions(s.Deployed)
	}
	if s.Notification != "" {
		line += "; notification " + s.Notification
	}
	return line
}

// deliveryStates are the states of a notification's deliveries, in the
// order they happen.
var deliveryStates = []string{"pending", "delivered", "done", "failed"}

// writeNotifications prints `cascade server notifications list`.
func writeNotifications(out io.Writer, ns []api.Notification) error {
	tw := newTable(out)
	fmt.Fprintln(tw, "ID\tCREATED\tDOMAIN\tVERSIONS\tAGENTS FIRST\tCLIENTS RELEASED")
	for _, n := range ns {
		released := "-"
		if n.ClientsReleased != nil {
			released = timeOr(*n.ClientsReleased, "-")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, timeOr(n.Created, "-"), firstOf(n.Domain, "(all)"),
			versions(n.Versions), yesNo(n.AgentsFirst), released)
	}
	return tw.Flush()
}

// writeNotification prints `cascade server notifications show ID`: the
// notification, then its deliveries per role and state.
func writeNotification(out io.Writer, n api.Notification) error {
	tw := newTable(out)
	released := "not yet"
	if n.ClientsReleased != nil {
		released = timeOr(*n.ClientsReleased, "-")
	}
	fmt.Fprintf(tw, "notification\t%s\n", n.ID)
	fmt.Fprintf(tw, "created\t%s\n", timeOr(n.Created, "-"))
	fmt.Fprintf(tw, "domain\t%s\n", firstOf(n.Domain, "(all)"))
	fmt.Fprintf(tw, "versions\t%s\n", versions(n.Versions))
	fmt.Fprintf(tw, "agents first\t%s\n", yesNo(n.AgentsFirst))
	fmt.Fprintf(tw, "clients released\t%s\n", released)
	if err := tw.Flush(); err != nil {
		return err
	}
	states := slices.Clone(deliveryStates)
	for _, byState := range n.Deliveries {
		for s := range byState {
			if !slices.Contains(states, s) {
				states = append(states, s)
			}
		}
	}
	fmt.Fprintln(out)
	tw = newTable(out)
	fmt.Fprintln(tw, "DELIVERIES\t"+strings.ToUpper(strings.Join(states, "\t"))+"\tTOTAL")
	for _, role := range slices.Sorted(maps.Keys(n.Deliveries)) {
		row, total := []string{role}, 0
		for _, s := range states {
			row = append(row, fmt.Sprint(n.Deliveries[role][s]))
			total += n.Deliveries[role][s]
		}
		fmt.Fprintf(tw, "%s\t%d\n", strings.Join(row, "\t"), total)
	}
	if len(n.Deliveries) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}

// writeReports prints `cascade server reports`: a line per report with
// where each category came from and what it changed.
func writeReports(out io.Writer, rs []api.Report) error {
	tw := newTable(out)
	fmt.Fprintln(tw, "RECEIVED\tENDPOINT\tTRIGGER\tRESULT\tSOURCES\tCHANGED")
	for _, r := range rs {
		var srcs, changed []string
		for _, c := range r.Categories {
			if c.Source != "" {
				srcs = append(srcs, c.Category+" "+c.Source)
			}
			if c.Result == "updated" {
				changed = append(changed, versionChange(c.Before, c.After))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", timeOr(r.ReceivedAt, "-"), r.EndpointID, r.Trigger, r.Result,
			dash(strings.Join(srcs, ", ")), dash(strings.Join(changed, ", ")))
	}
	return tw.Flush()
}

// writeComponents prints `cascade server components list`.
func writeComponents(out io.Writer, cs []api.Component) error {
	tw := newTable(out)
	fmt.Fprintln(tw, "COMPONENT\tLATEST\tDEPLOYED\tHELD\tSYNCED\tDEPLOYED AT")
	for _, x := range cs {
		at := "-"
		if x.DeployedAt != nil {
			at = timeOr(*x.DeployedAt, "-")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.Name, x.Latest, dash(x.Deployed), yesNo(x.Held), timeOr(x.Synced, "-"), at)
	}
	return tw.Flush()
}
