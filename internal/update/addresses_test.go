package update

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/report"
)

// TestAddressRangesPickSources: two clients bound to distinct loopback
// addresses share one policy; each one's own address selects its entries,
// and the mirrors see each client's connections come from its address.
func TestAddressRangesPickSources(t *testing.T) {
	w := newWorld(t)
	w.publish("1.0")
	tree := filepath.Dir(w.origin.PublishedDir())
	var mu sync.Mutex
	seen := map[string]map[string]bool{} // mirror -> client IPs
	mirrorAt := func(name string) string {
		files := http.FileServer(http.Dir(tree))
		return w.serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			mu.Lock()
			if seen[name] == nil {
				seen[name] = map[string]bool{}
			}
			seen[name][host] = true
			mu.Unlock()
			files.ServeHTTP(rw, r)
		}))
	}
	mirrorA, mirrorB := mirrorAt("A"), mirrorAt("B")
	origin := w.serveDir(tree)
	pol, err := policy.Parse([]byte(fmt.Sprintf(`origin: %q
server: https://server.invalid/
clients: {source: customized}
fallback_to_server: {components: false}
custom_sources:
  - {addresses: 127.0.1.0/24, source: %q}
  - {addresses: 127.0.2.0-127.0.2.255, source: %q}
  - {addresses: 127.0.0.0/8, source: %q}
`, origin, mirrorA, mirrorB, origin)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ip, want, mirror string }{
		{"127.0.1.1", mirrorA, "A"},
		{"127.0.2.1", mirrorB, "B"},
	} {
		tr := fetch.DefaultTransport(fetch.Options{})
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.ip)}, Timeout: time.Second}).DialContext
		e := w.endpoint(fetch.Options{Transport: tr})
		pl := plan.For(pol, plan.Endpoint{Role: plan.RoleClient, Addresses: []netip.Addr{netip.MustParseAddr(c.ip)}}, plan.Scheduled)
		rep := e.runner.Run(context.Background(), Request{Plan: pl})
		rc := rep.Category(category.Components)
		if rc.Result != report.Updated || rc.Source != c.want {
			t.Fatalf("client %s: %s from %s, want %s", c.ip, rc.Result, rc.Source, c.want)
		}
		mu.Lock()
		if !seen[c.mirror][c.ip] || len(seen[c.mirror]) != 1 {
			t.Errorf("mirror %s saw clients %v, want only %s", c.mirror, seen[c.mirror], c.ip)
		}
		mu.Unlock()
	}
}
