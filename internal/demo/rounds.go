package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/report"
)

// notifyPatience bounds the wait for the notified runs of the second
// round: the server releases the clients a poll interval (2 s) after the
// agents it reached have reported, so they are all done in a few
// seconds.
const notifyPatience = 20 * time.Second

// firstRound updates every endpoint: agents from the server, clients
// through their agents.
func (s *site) firstRound(ctx context.Context) error {
	s.say("\n1. Every endpoint updates (`cascade endpoint update --now`): agents from the server (agents.source: standard), clients through their agent.")
	s.update(ctx, s.eps)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.table(s.eps, time.Time{})
	return nil
}

// failover stops one agent, publishes a new pattern, and shows the
// notified runs: the running agent first, then the clients, those of the
// stopped agent falling back to the server while the others stay with
// theirs.
func (s *site) failover(ctx context.Context) error {
	stopped := s.eps[s.o.ClientsPerAgent+1]
	s.say("\n2. Agent %s stops. The origin publishes pattern 17.736.00; the server mirrors it, deploys it and\n   notifies the update agents first, then, once the agents it reached have updated, the clients.", stopped.name)
	stopped.close()
	if err := s.publish(ctx, "17.736.00"); err != nil {
		return err
	}
	start := time.Now()
	if err := s.sync(ctx); err != nil {
		return err
	}
	var running []*member
	for _, m := range s.eps {
		if m != stopped {
			running = append(running, m)
		}
	}
	notified := s.waitFor(ctx, running, "17.736.00", notifyPatience)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !notified {
		s.say("  (not every endpoint was notified within %s; updating the rest now)", notifyPatience)
		s.update(ctx, s.behind(running, "17.736.00"))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	s.say("  The runs in the order they finished (time since the server's sync was asked for):")
	s.table(running, start)
	s.say("")
	if notified {
		s.say("The agent updated first; its clients were notified once it had, and updated through it.")
	}
	s.say("The clients of %s found it unreachable and fell back to the server (fallback_to_server.components).\n`cascade explain` shows each plan; the server's agent report (GET /api/v1/agents/report) shows the\nsame from the server's side.", stopped.name)
	return nil
}

// behind lists the members whose last finished run did not leave pattern
// ver installed. It reads the run's report, not the installed tree: a run
// installs before it writes its report, and the table prints the report.
func (s *site) behind(ms []*member, ver string) []*member {
	var out []*member
	for _, m := range ms {
		if c := components(lastReport(m)); c == nil || c.After["pattern"] != ver {
			out = append(out, m)
		}
	}
	return out
}

// lastReport is the report of m's last finished run (nil: none yet).
func lastReport(m *member) *report.Report {
	cfg, err := endpoint.LoadConfig(m.config)
	if err != nil {
		return nil
	}
	st, err := endpoint.ReadStatus(cfg)
	if err != nil {
		return nil
	}
	return st.LastReport
}

// components is the components category of r (nil: none).
func components(r *report.Report) *report.Category {
	if r == nil {
		return nil
	}
	return r.Category(category.Components)
}

// waitFor waits until every member has reported ver installed, or the timeout.
func (s *site) waitFor(ctx context.Context, ms []*member, ver string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(s.behind(ms, ver)) == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// table prints where each member got its components in its last run.
// With a zero since the rows are in the members' order; otherwise in the
// order the runs finished, each with the time it finished after since.
func (s *site) table(ms []*member, since time.Time) {
	type row struct {
		m *member
		r *report.Report
	}
	rows := make([]row, len(ms))
	for i, m := range ms {
		rows[i] = row{m, lastReport(m)}
	}
	if !since.IsZero() {
		slices.SortStableFunc(rows, func(a, b row) int {
			if a.r == nil || b.r == nil {
				return 0
			}
			return a.r.Finished.Compare(b.r.Finished)
		})
	}
	s.say("  %-8s %-18s %-7s %-12s %-18s %-10s %-20s %s", "FINISHED", "ENDPOINT", "ROLE", "ADDRESS", "TRIGGER", "PATTERN", "UPDATED FROM", "SOURCES THAT FAILED FIRST")
	for _, x := range rows {
		c := components(x.r)
		if c == nil {
			s.say("  %-8s %-18s %-7s %-12s (no update yet)", "", x.m.name, x.m.role, x.m.addr)
			continue
		}
		when := ""
		if !since.IsZero() {
			when = fmt.Sprintf("+%.1fs", x.r.Finished.Sub(since).Seconds())
		}
		from := c.Source
		if from == "" {
			from = "(" + string(c.Result) + ")"
		}
		var failed []string
		for _, a := range c.Attempts {
			failed = append(failed, a.Source+" "+string(a.Class))
		}
		s.say("  %-8s %-18s %-7s %-12s %-18s %-10s %-20s %s", when, x.m.name, x.m.role, x.m.addr, x.r.Trigger,
			c.After["pattern"], from, strings.Join(failed, ", "))
	}
}
