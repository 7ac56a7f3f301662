package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/trust"
)

// RelayHeader names the agents a request has passed through, comma
// separated, the sender last. Agents add it to every upstream request.
const RelayHeader = "Cascade-Relay"

// relayKey is the context key of the relay chain of a pull-through.
type relayKey struct{}

// relayOptions returns o with its transport wrapped to send the relay
// header of agent id.
func relayOptions(o fetch.Options, id string) fetch.Options {
	if o.UserAgent == "" {
		o.UserAgent = "cascade-agent/" + id
	}
	if o.Client != nil {
		c := *o.Client
		base := c.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c.Transport = &relayTransport{base: base, id: id}
		o.Client = &c
		return o
	}
	base := o.Transport
	if base == nil {
		base = fetch.DefaultTransport(o)
	}
	o.Transport = &relayTransport{base: base, id: id}
	return o
}

// relayTransport adds the relay header: the chain the request's context
// carries (the agents a pulled-through request passed), then this agent.
type relayTransport struct {
	base http.RoundTripper
	id   string
}

func (t *relayTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	chain, _ := req.Context().Value(relayKey{}).([]string)
	chain = append(slices.Clip(chain), t.id)
	req = req.Clone(req.Context())
	req.Header.Set(RelayHeader, strings.Join(chain, ", "))
	return t.base.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of the wrapped
// transport.
func (t *relayTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// parseRelay splits a relay header into agent ids.
func parseRelay(h string) []string {
	var out []string
	for id := range strings.SplitSeq(h, ",") {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// pullReq is a request for a target the agent may pull through.
type pullReq struct {
	kind, rel string // repository, and path under its targets/
	tf        *metadata.TargetFiles
	upstream  trust.Source
	chain     []string
}

// pullable reports whether r asks for a target that the agent's verified
// metadata names, that is not on disk, and that the agent may pull
// through for this request: it has an upstream, and the request has not
// passed through this agent already nor through MaxRelayHops agents.
// Anything else is left to the static handler (which answers 404 for a
// missing file).
func (a *Agent) pullable(r *http.Request) (pullReq, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return pullReq{}, false
	}
	kind, rel, ok := splitTarget(r.URL.Path)
	if !ok {
		return pullReq{}, false
	}
	a.mu.Lock()
	s := a.served[kind]
	a.mu.Unlock()
	if s == nil || s.upstream.Base == "" {
		return pullReq{}, false
	}
	tf := s.targets[rel] // only names from verified metadata match
	if tf == nil {
		return pullReq{}, false
	}
	if _, err := os.Stat(filepath.Join(a.o.Dir, kind, "targets", filepath.FromSlash(rel))); err == nil {
		return pullReq{}, false
	}
	chain := parseRelay(r.Header.Get(RelayHeader))
	if len(chain) >= MaxRelayHops || slices.Contains(chain, a.o.ID) {
		return pullReq{}, false
	}
	return pullReq{kind: kind, rel: rel, tf: tf, upstream: s.upstream, chain: chain}, true
}

// pullThrough fetches p once for all the requests that want it at the
// same time (with the same relay chain) and waits for it up to PullWait.
// It returns true when the file is on disk for the static handler;
// otherwise it has answered: 503 with Retry-After while the pull goes on,
// 404 if upstream does not hold the target, 502 if it failed otherwise.
func (a *Agent) pullThrough(w http.ResponseWriter, r *http.Request, p pullReq) bool {
	key := p.kind + "/" + p.rel + "|" + strings.Join(p.chain, ",")
	ch := a.pulls.DoChan(key, func() (any, error) { return nil, a.pull(p) })
	t := time.NewTimer(a.o.PullWait)
	defer t.Stop()
	select {
	case res := <-ch:
		if res.Err == nil {
			return true
		}
		a.log.Warn("agent: pull-through", "target", p.kind+"/targets/"+p.rel, "error", res.Err)
		code := http.StatusBadGateway
		if failure.Is(res.Err, failure.NotFound) {
			code = http.StatusNotFound
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, http.StatusText(code), code)
	case <-t.C:
		a.m.unavailableFor("pulling")
		unavailable(w, time.Second, "fetching from upstream: retry shortly")
	case <-r.Context().Done():
	}
	return false
}

// pull downloads one target from upstream (or copies the agent's own
// installed copy), verifies its length and sha256 against the signed
// description, and renames it into the tree. Temporary files live in
// Dir/.pull, which the static handler never serves (dot-prefixed).
func (a *Agent) pull(p pullReq) error {
	ctx, cancel := context.WithTimeout(context.WithValue(a.pullCtx, relayKey{}, p.chain), a.o.PullTimeout)
	defer cancel()
	tmpDir := filepath.Join(a.o.Dir, ".pull")
	dst := filepath.Join(a.o.Dir, p.kind, "targets", filepath.FromSlash(p.rel))
	for _, d := range []string{tmpDir, filepath.Dir(dst)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return failure.New(failure.Local, "pull "+p.rel, err)
		}
	}
	tmp := filepath.Join(tmpDir, randomName())
	defer os.Remove(tmp + ".part")
	defer os.Remove(tmp)
	sum := []byte(p.tf.Hashes["sha256"])
	if a.o.Local != nil {
		if src := a.o.Local(hex.EncodeToString(sum), p.tf.Length); src != "" {
			copyLocal(src, tmp+".part") // verified by File below, like a download
		}
	}
	err := a.fetcher.File(ctx, targetURL(p.upstream.Base, p.kind, p.rel), tmp, fetch.Want{Length: p.tf.Length, SHA256: sum})
	a.m.fetched(p.kind, p.tf.Length, err)
	if err != nil {
		return fmt.Errorf("pull %s from %s: %w", p.rel, p.upstream.Name, err)
	}
	if err := atomicfile.Rename(tmp, dst); err != nil {
		return failure.New(failure.Local, "pull "+p.rel, err)
	}
	a.log.Info("agent: pulled through", "target", p.kind+"/targets/"+p.rel, "from", p.upstream.Name, "bytes", p.tf.Length)
	return nil
}

// targetURL is the URL of a target file at a source, each segment
// escaped.
func targetURL(base, kind, rel string) string {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimRight(base, "/") + "/" + kind + "/targets/" + strings.Join(segs, "/")
}

func randomName() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
