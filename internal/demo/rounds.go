package demo

import (
	"context"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
)

// firstRound updates every endpoint: agents from the server, clients
// through their agents.
func (s *site) firstRound(ctx context.Context) error {
	s.say("\n1. Every endpoint updates: agents from the server (agents.source: standard), clients through their agent.")
	s.update(ctx, s.eps)
	s.table()
	return nil
}

// failover stops one agent, publishes a new pattern, and shows its
// clients falling back to the server while the others stay with theirs.
func (s *site) failover(ctx context.Context) error {
	stopped := s.eps[s.o.ClientsPerAgent+1]
	s.say("\n2. Agent %s stops. The origin publishes pattern 17.736.00; the server mirrors it, deploys it and notifies the agents first, then the clients.", stopped.name)
	stopped.close()
	if err := s.publish(ctx, "17.736.00"); err != nil {
		return err
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	var running []*member
	for _, m := range s.eps {
		if m != stopped {
			running = append(running, m)
		}
	}
	if !s.waitFor(ctx, running, "17.736.00", 20*time.Second) {
		s.say("  (not every endpoint was notified within 20s; updating the rest now)")
		s.update(ctx, s.behind(running, "17.736.00"))
	}
	s.table()
	s.say("\nThe clients of %s found it unreachable and fell back to the server (fallback_to_server.components);\nthe others updated through their agent. `cascade explain` shows each plan; the server's\nagent report (GET /api/v1/agents/report) shows the same from the server's side.", stopped.name)
	return nil
}

// behind lists the members whose last finished run did not leave pattern
// ver installed. It reads the run's report, not the installed tree: a run
// installs before it writes its report, and the table prints the report.
func (s *site) behind(ms []*member, ver string) []*member {
	var out []*member
	for _, m := range ms {
		if reportedPattern(m) != ver {
			out = append(out, m)
		}
	}
	return out
}

// reportedPattern is the pattern version m's last report left installed.
func reportedPattern(m *member) string {
	cfg, err := endpoint.LoadConfig(m.config)
	if err != nil {
		return ""
	}
	st, err := endpoint.ReadStatus(cfg)
	if err != nil || st.LastReport == nil {
		return ""
	}
	c := st.LastReport.Category(category.Components)
	if c == nil {
		return ""
	}
	return c.After["pattern"]
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
		case <-time.After(200 * time.Millisecond):
		}
	}
	return false
}
