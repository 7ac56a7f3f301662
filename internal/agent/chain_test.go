package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChainAndCycle: three agents whose upstreams form a cycle (A copies
// from C, C from B, B from A). A target none of them holds is asked for:
// the request goes round the cycle once, comes back to an agent it
// already passed, and is answered 404 at once: no loop, no deadlock, and
// the origin is never asked. Once one agent of the cycle copies from the
// origin, the same request is pulled through the chain and stored by every
// agent on the way.
func TestChainAndCycle(t *testing.T) {
	w := newWorld(t)
	old := w.publish("pattern", "1.0", 5000, "a.ptn")
	w.publish("pattern", "2.0", 5000, "a.ptn")
	long := func(o *Options) { o.PullWait = time.Minute }
	a, b, c := w.startAgent("ua-a", long), w.startAgent("ua-b", long), w.startAgent("ua-c", long)
	a.refresh(t, w.url)
	b.refresh(t, a.url)
	c.refresh(t, b.url)
	a.refresh(t, c.url) // up to date: A's upstream is now C
	for _, x := range []*agentFixture{a, b, c} {
		if got := x.Status().Repositories["vendor"].Items["components"]["pattern"]; got != "2.0" {
			t.Fatalf("%s serves pattern %q", x.o.ID, got)
		}
	}
	target := "components/pattern/1.0/a.ptn"
	before := w.targets.Load()
	resp, _ := get(t, consistentURL(a.url, target, old[target]), nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("round the cycle: %s", resp.Status)
	}
	if w.targets.Load() != before {
		t.Fatal("the origin was asked although no agent copies from it")
	}
	for _, x := range []*agentFixture{a, b, c} {
		if x.Status().UpstreamFetches != 3 { // the refresh's three targets only
			t.Errorf("%s: %d upstream fetches", x.o.ID, x.Status().UpstreamFetches)
		}
	}
	// One path to the origin: B copies from it.
	b.refresh(t, w.url)
	resp, body := get(t, consistentURL(a.url, target, old[target]), nil)
	if resp.StatusCode != 200 || string(body) != string(old[target]) {
		t.Fatalf("through the chain: %s", resp.Status)
	}
	for _, x := range []*agentFixture{a, b, c} {
		if !holds(x, target) {
			t.Errorf("%s did not keep the pulled target", x.o.ID)
		}
	}
}

// TestRelayHops: a request that passed MaxRelayHops agents, or this one,
// is not pulled through.
func TestRelayHops(t *testing.T) {
	w := newWorld(t)
	old := w.publish("pattern", "1.0", 100, "a.ptn")
	w.publish("pattern", "2.0", 100, "a.ptn")
	a := w.startAgent("ua-a", nil)
	a.refresh(t, w.url)
	u := consistentURL(a.url, "components/pattern/1.0/a.ptn", old["components/pattern/1.0/a.ptn"])
	hops := make([]string, MaxRelayHops)
	for i := range hops {
		hops[i] = "ua-x" + string(rune('a'+i))
	}
	for _, chain := range []string{strings.Join(hops, ", "), "ua-b, ua-a", "ua-a"} {
		if resp, _ := get(t, u, map[string]string{RelayHeader: chain}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("chain %q: %s", chain, resp.Status)
		}
	}
	if resp, _ := get(t, u, map[string]string{RelayHeader: "ua-b, ua-c"}); resp.StatusCode != http.StatusOK {
		t.Errorf("short chain: %s", resp.Status)
	}
}

// holds reports whether agent x has target's file on disk.
func holds(x *agentFixture, target string) bool {
	x.mu.Lock()
	s := x.served["vendor"]
	x.mu.Unlock()
	for rel, tf := range s.targets {
		if strings.HasSuffix(rel, filepath.Base(target)) && strings.Contains(rel, "/1.0/") {
			_, err := os.Stat(filepath.Join(x.dir, "vendor", "targets", filepath.FromSlash(rel)))
			return err == nil && tf.Length > 0
		}
	}
	return false
}
