//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/report"
)

// deltaItem is the component of TestDeltaUpdates: one file of
// deltaFileSize bytes, made of 64-byte records, 0.5% of which change
// from one version to the next.
const (
	deltaItem     = "bigpattern"
	deltaFileSize = 1 << 20
	deltaRecord   = 64
)

// deltaVersion returns the content of version n of deltaItem: version 1
// is random records, each later version changes 0.5% of the records of
// the one before (deterministically).
func deltaVersion(n int) []byte {
	b := make([]byte, deltaFileSize)
	r := rand.New(rand.NewPCG(16, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for v := 2; v <= n; v++ {
		r := rand.New(rand.NewPCG(16, uint64(v)))
		for range deltaFileSize / deltaRecord / 200 {
			rec := r.IntN(deltaFileSize / deltaRecord)
			for i := range deltaRecord {
				b[rec*deltaRecord+i] = byte(r.Uint32())
			}
		}
	}
	return b
}

// deltaSite is the site of TestDeltaUpdates: an update agent ua-1
// (10.61.0.1) that updates from the server, and a client (10.61.1.1)
// behind it.
type deltaSite struct {
	s             *site
	agent, client *member
	accessLog     string            // the agent's access log
	versions      map[int][]byte    // deltaItem's content by version
	hashes        map[string]string // version -> sha256 of its file
	sent          int               // access log records already read
	upstream      float64           // the agent's upstream bytes at the last look
}

// TestDeltaUpdates runs incremental updates (docs/deltas.md) through
// real processes. A client behind an update agent updates three
// versions in a row by deltas: each time the server rebuilt the version
// from the one delta it fetched from the origin (recreating the others),
// the agent's own run
// installed it by a delta from the server and its refresh recreated the
// delta from its installation (the bytes from the server are the
// index's), and the
// client's run took the delta from the agent (its access log) and
// rebuilt the file; every report says one delta and bytes far below
// full_bytes. Then the agent and the client are 20 versions behind,
// beyond the origin's K=14 deltas: each downloads the full file, with no
// failed attempt.
func TestDeltaUpdates(t *testing.T) {
	t.Parallel()
	d := &deltaSite{s: newSite(t, 61, siteOptions{}), versions: map[int][]byte{}, hashes: map[string]string{}}
	s := d.s
	s.setPolicy(fmt.Sprintf(`origin: %s
server: %s
clients: {source: customized}
agents: {source: customized}
fallback_to_server: {components: true, domain_settings: true, programs: true}
custom_sources:
  - {addresses: 10.61.1.0/24, source: "agent:ua-1"}
`, s.originURL, s.serverURL))
	d.publish(1)
	s.sync()
	d.accessLog = filepath.Join(s.dir, "agent-access.log")
	d.agent = s.enroll("agent-1", memberOptions{Address: "10.61.0.1", AgentID: "ua-1",
		Config: map[string]any{"serve": map[string]any{"access_log": d.accessLog}}})
	d.client = s.enroll("client-1", memberOptions{Address: "10.61.1.1"})
	for _, m := range []*member{d.agent, d.client} {
		r := s.serverReport(m, m.updateNow())
		if rc := r.Category(category.Components); rc == nil || rc.Result != report.Updated || rc.Deltas != 0 {
			t.Fatalf("%s: first run installed components %+v, want updated in full", m.name, rc)
		}
		d.wantInstalled(m, 1)
	}
	d.accessRecords()
	d.agentMetrics()
	s.waitConnected(d.agent, d.client)
	for v := 2; v <= 4; v++ {
		if d.byDelta(v); t.Failed() {
			return
		}
	}
	d.farBehind()
}

// publish publishes version n of deltaItem at the origin ("1.n").
func (d *deltaSite) publish(n int) {
	d.versions[n] = deltaVersion(n)
	h := sha256.Sum256(d.versions[n])
	d.hashes[version(n)] = fmt.Sprintf("%x", h)
	d.s.publishData("--component", deltaItem, version(n), d.versions[n])
}

func version(n int) string { return "1." + strconv.Itoa(n) }

// wantInstalled checks that m has version n of deltaItem installed, byte
// for byte.
func (d *deltaSite) wantInstalled(m *member, n int) {
	d.s.t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dataDir, "installed", "components", "current", deltaItem, fileName(deltaItem)))
	if err != nil || !bytes.Equal(b, d.versions[n]) {
		d.s.t.Errorf("%s: installed %s is not version %s (%d bytes, %v)", m.name, deltaItem, version(n), len(b), err)
	}
}

// byDelta publishes version n, has the server sync (a notification) and
// checks that the agent and then its client updated by delta.
func (d *deltaSite) byDelta(n int) {
	s, t := d.s, d.s.t
	t.Logf("== version %s by delta", version(n))
	d.publish(n)
	res := s.sync()
	if res.Notification == "" || res.Deployed[deltaItem] != version(n) {
		t.Fatalf("sync deployed %v (notification %q), want %s %s", res.Deployed, res.Notification, deltaItem, version(n))
	}
	ra := s.notified(d.agent, res.Notification)
	checkCategory(t, "agent", ra, category.Components, report.Updated, "server")
	checkDeltaReport(t, "agent", ra, 1)
	d.wantInstalled(d.agent, n)
	rc := s.notified(d.client, res.Notification)
	checkCategory(t, "client", rc, category.Components, report.Updated, "agent:ua-1")
	checkDeltaReport(t, "client", rc, 1)
	d.wantInstalled(d.client, n)

	// The server fetched one delta from the origin (the one from the
	// version it held; the client's report says its size) and the
	// category index, not the file, and recreated the older deltas.
	if d := rc.Category(category.Components); d != nil && (res.Bytes < d.Bytes || res.Bytes > d.Bytes+2048) {
		t.Errorf("the server's sync downloaded %d bytes for version %s, want one delta (%d bytes) and the index", res.Bytes, version(n), d.Bytes)
	}
	// The agent served the client the delta, never the new file.
	var deltaSent int64
	for _, r := range d.accessRecords() {
		switch {
		case strings.HasSuffix(r.Path, "."+fileName(deltaItem)+".from-"+version(n-1)+".cdlt") && r.Status == http.StatusOK:
			deltaSent += r.Bytes
		case strings.HasSuffix(r.Path, d.hashes[version(n)]+"."+fileName(deltaItem)):
			t.Errorf("the agent served the full file of %s: %+v", version(n), r)
		}
	}
	if deltaSent == 0 || deltaSent >= deltaFileSize/10 {
		t.Errorf("version %s: the agent's access log shows %d bytes of the delta from %s sent, want one delta", version(n), deltaSent, version(n-1))
	}
	// The agent's refresh took the file from its installation and
	// recreated the delta it serves from the version it held: it fetched
	// the index from the server, neither the file nor the delta again.
	m := d.agentMetrics()
	if dc := rc.Category(category.Components); dc != nil && m["up"] >= float64(dc.Bytes) {
		t.Errorf("version %s: the agent's refresh fetched %v bytes from the server, want less than the delta (%d bytes)", version(n), m["up"], dc.Bytes)
	}
	t.Logf("version %s: server sync %d bytes from the origin; agent run %d bytes (full %d); agent refresh %v bytes; client %d bytes from the agent (full %d)",
		version(n), res.Bytes, ra.Category(category.Components).Bytes, ra.Category(category.Components).FullBytes, m["up"],
		rc.Category(category.Components).Bytes, rc.Category(category.Components).FullBytes)
}

// checkDeltaReport checks that the components of rep were updated with
// want deltas, the bytes downloaded far below those of the full file.
func checkDeltaReport(t *testing.T, who string, rep *report.Report, want int) {
	t.Helper()
	rc := rep.Category(category.Components)
	if rc == nil {
		return
	}
	if rc.Deltas != want || rc.FullBytes != deltaFileSize || rc.Bytes <= 0 || rc.Bytes >= rc.FullBytes/10 || len(rc.Attempts) != 0 {
		b, _ := json.MarshalIndent(rc, "", "  ")
		t.Errorf("%s: run %s: components by %d deltas, %d bytes of %d full, want %d deltas, bytes under a tenth of %d\n%s",
			who, rep.ID, rc.Deltas, rc.Bytes, rc.FullBytes, want, deltaFileSize, b)
	}
}

// farBehind: 20 versions are published and the server syncs once; the
// agent and the client are 20 versions behind, beyond the origin's 14
// deltas: the agent downloads the full file from the server, and the
// client the full file from the agent, each without a failed attempt.
func (d *deltaSite) farBehind() {
	s, t := d.s, d.s.t
	t.Log("== 20 versions behind")
	for n := 5; n <= 24; n++ {
		d.publish(n)
	}
	res := s.sync()
	for _, w := range []struct {
		m      *member
		source string
	}{{d.agent, "server"}, {d.client, "agent:ua-1"}} {
		r := s.notified(w.m, res.Notification)
		checkCategory(t, w.m.name, r, category.Components, report.Updated, w.source)
		if rc := r.Category(category.Components); rc != nil && (rc.Deltas != 0 || rc.Bytes != deltaFileSize || rc.FullBytes != deltaFileSize) {
			b, _ := json.MarshalIndent(rc, "", "  ")
			t.Errorf("%s, 20 versions behind: want the full file (%d bytes), no delta\n%s", w.m.name, deltaFileSize, b)
		}
		d.wantInstalled(w.m, 24)
	}
	var full int64
	for _, a := range d.accessRecords() {
		if strings.Contains(a.Path, ".from-") {
			t.Errorf("the client 20 versions behind asked the agent for a delta: %+v", a)
		}
		if strings.HasSuffix(a.Path, d.hashes[version(24)]+"."+fileName(deltaItem)) && a.Status == http.StatusOK {
			full += a.Bytes
		}
	}
	if full != deltaFileSize {
		t.Errorf("the agent's access log shows %d bytes of the full file of %s sent, want %d", full, version(24), deltaFileSize)
	}
}

// accessRecord is one record of the agent's access log.
type accessRecord struct {
	Path   string `json:"path"`
	Status int    `json:"status"`
	Bytes  int64  `json:"bytes"`
}

// accessRecords returns the records of the agent's access log written
// since the last call.
func (d *deltaSite) accessRecords() []accessRecord {
	t := d.s.t
	t.Helper()
	f, err := os.Open(d.accessLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []accessRecord
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		if i < d.sent {
			continue
		}
		d.sent++
		var r accessRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", d.accessLog, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var upstreamBytes = regexp.MustCompile(`(?m)^cascade_agent_upstream_bytes_total (\S+)$`)

// agentMetrics scrapes the agent's /metrics and returns, as "up", the
// bytes of targets it fetched from upstream since the last call.
func (d *deltaSite) agentMetrics() map[string]float64 {
	t := d.s.t
	t.Helper()
	resp, err := http.Get("http://" + d.agent.listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := upstreamBytes.FindSubmatch(b)
	if m == nil {
		t.Fatalf("the agent's metrics have no cascade_agent_upstream_bytes_total:\n%s", b)
	}
	up, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	prev := d.upstream
	d.upstream = up
	return map[string]float64{"up": up - prev}
}
