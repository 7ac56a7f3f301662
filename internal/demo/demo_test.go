package demo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
)

// TestDemo runs the demonstration with one client per agent and checks,
// from the endpoints' reports, the story it tells: in the second round
// the running agent updated from the server in a notify-components run,
// and only then were the clients notified: its client updated through
// it, the stopped agent's client through the server after finding its
// agent unreachable.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Out: &out, ClientsPerAgent: 1, Dir: dir}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	if strings.Contains(text, "not every endpoint was notified") {
		t.Errorf("the demo updated endpoints itself:\n%s", text)
	}
	last := func(name string) *report.Report {
		t.Helper()
		cfg, err := endpoint.LoadConfig(filepath.Join(dir, "endpoints", name, "endpoint.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := endpoint.ReadStatus(cfg)
		if err != nil || st.LastReport == nil {
			t.Fatalf("%s: no report (%v)\n%s", name, err, text)
		}
		return st.LastReport
	}
	agent, berlin, paris := last("ua-berlin-1"), last("client-berlin-1"), last("client-paris-1")
	for name, r := range map[string]*report.Report{"ua-berlin-1": agent, "client-berlin-1": berlin, "client-paris-1": paris} {
		if r.Trigger != plan.NotifyComponents || r.Notification == "" || r.Notification != agent.Notification {
			t.Errorf("%s: last run %s of notification %q, want notify-components of the agent's %q", name, r.Trigger, r.Notification, agent.Notification)
		}
		if c := r.Category(category.Components); c == nil || c.After["pattern"] != "17.736.00" {
			t.Errorf("%s: components %+v, want pattern 17.736.00", name, c)
		}
	}
	for name, r := range map[string]*report.Report{"client-berlin-1": berlin, "client-paris-1": paris} {
		if r.Started.Before(agent.Finished) {
			t.Errorf("%s started at %s, before the agent finished at %s: clients were not held for the agent", name, r.Started, agent.Finished)
		}
	}
	source := func(r *report.Report) string {
		if c := r.Category(category.Components); c != nil {
			return c.Source
		}
		return ""
	}
	if got := source(agent); got != "server" {
		t.Errorf("agent updated from %q, want server", got)
	}
	if got := source(berlin); got != "agent:ua-berlin-1" {
		t.Errorf("client-berlin-1 updated from %q, want its agent", got)
	}
	if got := source(paris); got != "server" {
		t.Errorf("client-paris-1 updated from %q, want the server", got)
	}
	if c := paris.Category(category.Components); c == nil || len(c.Attempts) != 1 ||
		c.Attempts[0].Source != "agent:ua-paris-1" || c.Attempts[0].Class != failure.Unreachable {
		t.Errorf("client-paris-1 did not find its stopped agent unreachable first: %+v", c)
	}
	stopped := last("ua-paris-1")
	if c := stopped.Category(category.Components); stopped.Trigger != plan.Manual || c == nil || c.After["pattern"] != "17.735.00" {
		t.Errorf("the stopped agent ran after it was stopped: %s %+v", stopped.Trigger, c)
	}
}

// cancelOn is the demo's output, cancelling the demo when the text
// contains mark.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	mark   string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.mark) {
		w.cancel()
	}
	return n, err
}

// TestDemoInterrupted cancels the demonstration in each round (Ctrl-C):
// it says it was interrupted, lists no failures or table after the
// point it was interrupted, and removes its temporary directory.
func TestDemoInterrupted(t *testing.T) {
	for _, mark := range []string{"\n1. ", "\n2. "} {
		t.Run(strings.TrimSpace(mark), func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &cancelOn{mark: mark, cancel: cancel}
			err := Run(ctx, Options{Out: w, ClientsPerAgent: 1})
			text := w.buf.String()
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("Run: %v, want ErrInterrupted\n%s", err, text)
			}
			_, after, _ := strings.Cut(text, mark)
			if !strings.Contains(after, "Interrupted") {
				t.Errorf("does not say it was interrupted:\n%s", text)
			}
			for _, bad := range []string{"ENDPOINT", "context canceled", "not every endpoint", "fell back"} {
				if strings.Contains(after, bad) {
					t.Errorf("after the interruption the demo printed %q:\n%s", bad, text)
				}
			}
			left, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("left %v in the temporary directory", left)
			}
		})
	}
}
