package hostile_test

import (
	"crypto/x509"
	"net/http"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/testkit/hostile"
)

// The rules of docs/update-process.md (Unable to update) that the cases exercise: "A source is
// unable to update an endpoint when it ...".
const (
	ruleRefused  = "unable to update: cannot be reached (refused)"
	ruleTimeout  = "unable to update: cannot be reached (timeout)"
	ruleTLS      = "unable to update: cannot be reached (TLS)"
	ruleTooSlow  = "unable to update: cannot be reached (too slow)"
	ruleHTTP     = "unable to update: answers an HTTP error"
	ruleNotFound = "unable to update: does not hold the category (not available or not found)"
	ruleSig      = "unable to update: serves anything that fails verification (bad signature)"
	ruleHash     = "unable to update: serves anything that fails verification (hash)"
	ruleLength   = "unable to update: serves anything that fails verification (length)"
	ruleExpired  = "unable to update: serves anything that fails verification (expired metadata)"
	ruleStale    = "unable to update: is stale (older than what the endpoint already trusts)"
	ruleDelta    = "a delta that fails to download, apply or verify is recorded in the report and the file is downloaded in full from the same source"
)

// hostileCase is one hostile behaviour as the first source of an
// endpoint's list, an honest mirror second.
type hostileCase struct {
	name string
	rule string
	o    hostile.Options // Dir is the newest state (s2) unless set
	alt  string          // world tree served as Options.Alt
	tls  bool            // serve the hostile source over https
	// untrusted: the endpoint is not given the certificate's pool.
	untrusted bool
	// toHonest redirects (RedirectScheme) to the honest mirror.
	toHonest bool
	// quick: the endpoint gives up on unanswered requests after half a
	// second (see suiteFetch).
	quick bool
	// skew moves the endpoint's clock forward by skewed after its first
	// install; the honest mirror then serves the "future" tree.
	skew bool
	// delta: the case is about the delta from the installed 2.0 of a.ptn
	// (the one file large enough to be updated by delta) to 3.0; the
	// source misbehaves on deltas only, and updates the endpoint with
	// the full file after the failed delta (checkDelta).
	delta bool
	// body names what Replace serves (see deltaBody).
	body string
	// alterBase alters the endpoint's installed a.ptn on disk first.
	alterBase bool
	want      failure.Class
}

func cases() []hostileCase {
	b := func(b hostile.Behaviour) hostile.Options { return hostile.Options{Behaviour: b} }
	with := func(b hostile.Behaviour, match func(string) bool) hostile.Options {
		return hostile.Options{Behaviour: b, Match: match}
	}
	status := func(code int) hostile.Options { return hostile.Options{Behaviour: hostile.Status, Status: code} }
	return []hostileCase{
		{name: "refuse", rule: ruleRefused, o: b(hostile.Refuse), want: failure.Unreachable},
		{name: "reset", rule: ruleRefused, o: b(hostile.Reset), want: failure.Unreachable},
		{name: "hang", rule: ruleTimeout, o: b(hostile.Hang), quick: true, want: failure.Unreachable},
		{name: "hang-over-tls", rule: ruleTimeout, o: b(hostile.Hang), tls: true, quick: true, want: failure.Unreachable},
		{name: "untrusted-certificate", rule: ruleTLS, o: b(hostile.Honest), tls: true, untrusted: true, want: failure.Unreachable},
		{name: "silent", rule: ruleTimeout, o: b(hostile.Silent), quick: true, want: failure.Unreachable},
		{name: "garbage", rule: ruleHTTP, o: b(hostile.Garbage), want: failure.HTTPError},
		{name: "header-flood", rule: ruleHTTP, o: b(hostile.HeaderFlood), want: failure.HTTPError},
		{name: "stall-metadata", rule: ruleTooSlow, o: with(hostile.Stall, hostile.Metadata), want: failure.TooSlow},
		{name: "stall-payload", rule: ruleTooSlow, o: with(hostile.Stall, hostile.Payload), want: failure.TooSlow},
		{name: "trickle-metadata", rule: ruleTooSlow, o: b(hostile.Trickle), want: failure.TooSlow},
		{name: "trickle-payload", rule: ruleTooSlow, o: with(hostile.Trickle, hostile.Payload), want: failure.TooSlow},
		{name: "endless-metadata", rule: ruleLength, o: b(hostile.Endless), want: failure.Verification},
		{name: "endless-snapshot", rule: ruleLength, o: with(hostile.Endless, hostile.Role("snapshot")), want: failure.Verification},
		{name: "endless-payload", rule: ruleLength, o: with(hostile.Endless, hostile.Payload), want: failure.Verification},
		{name: "redirect-loop", rule: ruleHTTP, o: b(hostile.RedirectLoop), want: failure.HTTPError},
		{name: "redirect-chain", rule: ruleHTTP, o: b(hostile.RedirectChain), want: failure.HTTPError},
		{name: "redirect-https-to-http", rule: ruleHTTP, o: b(hostile.RedirectScheme), tls: true, toHonest: true, want: failure.HTTPError},
		{name: "redirect-payload-https-to-http", rule: ruleHTTP, o: with(hostile.RedirectScheme, hostile.Payload), tls: true, toHonest: true, want: failure.HTTPError},
		{name: "redirect-to-ftp", rule: ruleHTTP, o: hostile.Options{Behaviour: hostile.RedirectScheme, RedirectTo: "ftp://127.0.0.1/"}, want: failure.HTTPError},
		{name: "redirect-to-file", rule: ruleHTTP, o: hostile.Options{Behaviour: hostile.RedirectScheme, RedirectTo: "file:///"}, want: failure.HTTPError},
		{name: "tamper-metadata", rule: ruleSig, o: with(hostile.Tamper, hostile.Metadata), want: failure.Verification},
		{name: "tamper-snapshot", rule: ruleHash, o: with(hostile.Tamper, hostile.Role("snapshot")), want: failure.Verification},
		{name: "tamper-hash-bins", rule: ruleSig, o: with(hostile.Tamper, hostile.Role("bins")), want: failure.Verification},
		{name: "tamper-index", rule: ruleHash, o: with(hostile.Tamper, hostile.Targets), want: failure.Verification},
		{name: "tamper-payload", rule: ruleHash, o: with(hostile.Tamper, hostile.Payload), want: failure.Verification},
		{name: "tamper-payload-chunked", rule: ruleHash, o: hostile.Options{Behaviour: hostile.Tamper, Match: hostile.Payload, HideLength: true}, want: failure.Verification},
		{name: "rollback", rule: ruleStale, o: b(hostile.Rollback), alt: "s0", want: failure.Stale},
		{name: "expired", rule: ruleExpired, o: b(hostile.Expired), alt: "expired", want: failure.Verification},
		{name: "foreign-keys", rule: ruleSig, o: b(hostile.Foreign), alt: "foreign", want: failure.Verification},
		{name: "freeze", rule: ruleExpired, o: b(hostile.Freeze), alt: "s1", skew: true, want: failure.Verification},
		{name: "mix-new-timestamp-old-snapshot", rule: ruleHash, o: hostile.Options{Behaviour: hostile.Mix, MixRoles: []string{"snapshot"}}, alt: "s1", want: failure.Verification},
		{name: "mix-new-snapshot-old-hash-bins", rule: ruleLength, o: hostile.Options{Behaviour: hostile.Mix, MixRoles: []string{"bins"}}, alt: "s1", want: failure.Verification},
		{name: "truncate-metadata", rule: ruleRefused, o: b(hostile.Truncate), want: failure.Unreachable},
		{name: "truncate-payload", rule: ruleRefused, o: with(hostile.Truncate, hostile.Payload), want: failure.Unreachable},
		{name: "short-length-metadata", rule: ruleLength, o: b(hostile.ShortLength), want: failure.Verification},
		{name: "short-length-payload", rule: ruleLength, o: with(hostile.ShortLength, hostile.Payload), want: failure.Verification},
		{name: "short-length-payload-chunked", rule: ruleLength, o: hostile.Options{Behaviour: hostile.ShortLength, Match: hostile.Payload, HideLength: true}, want: failure.Verification},
		{name: "oversize-timestamp", rule: ruleLength, o: b(hostile.Oversize), want: failure.Verification},
		{name: "oversize-timestamp-chunked", rule: ruleLength, o: hostile.Options{Behaviour: hostile.Oversize, HideLength: true}, want: failure.Verification},
		{name: "oversize-snapshot", rule: ruleLength, o: hostile.Options{Behaviour: hostile.Oversize, Match: hostile.Role("snapshot"), Pad: 100}, want: failure.Verification},
		{name: "oversize-payload", rule: ruleLength, o: with(hostile.Oversize, hostile.Payload), want: failure.Verification},
		{name: "500", rule: ruleHTTP, o: status(http.StatusInternalServerError), want: failure.HTTPError},
		{name: "502", rule: ruleHTTP, o: status(http.StatusBadGateway), want: failure.HTTPError},
		{name: "503", rule: ruleHTTP, o: status(http.StatusServiceUnavailable), want: failure.HTTPError},
		{name: "503-busy-forever", rule: ruleHTTP, o: hostile.Options{Behaviour: hostile.Status, Status: http.StatusServiceUnavailable, RetryAfter: "1"}, want: failure.HTTPError},
		{name: "403", rule: ruleHTTP, o: status(http.StatusForbidden), want: failure.HTTPError},
		{name: "304-unasked", rule: ruleHTTP, o: status(http.StatusNotModified), want: failure.HTTPError},
		{name: "404", rule: ruleNotFound, o: status(http.StatusNotFound), want: failure.NotFound},
		{name: "410", rule: ruleNotFound, o: status(http.StatusGone), want: failure.NotFound},
		{name: "404-payload", rule: ruleNotFound, o: hostile.Options{Behaviour: hostile.Status, Status: http.StatusNotFound, Match: hostile.Payload}, want: failure.NotFound},
		{name: "delta-tamper", rule: ruleDelta, o: with(hostile.Tamper, hostile.Delta), delta: true, want: failure.Verification},
		{name: "delta-other-base", rule: ruleDelta, o: with(hostile.Replace, hostile.Delta), body: "other-base", delta: true, want: failure.Verification},
		{name: "delta-bomb", rule: ruleDelta, o: with(hostile.Replace, hostile.Delta), body: "bomb", delta: true, want: failure.Verification},
		{name: "delta-truncate", rule: ruleDelta, o: with(hostile.Truncate, hostile.Delta), delta: true, want: failure.Unreachable},
		{name: "delta-short-length", rule: ruleDelta, o: with(hostile.ShortLength, hostile.Delta), delta: true, want: failure.Verification},
		{name: "delta-base-altered", rule: ruleDelta, o: b(hostile.Honest), alterBase: true, delta: true, want: failure.Local},
	}
}

// TestHostileSources runs every hostile behaviour as the first source of
// an endpoint's list, alone and then with an honest mirror second, and
// checks that the endpoint reports the right failure class, moves to the
// mirror, installs exactly the verified content, and that nothing the
// hostile source served reached the trusted metadata or the install store
// (both compared with an endpoint that used the honest mirror only).
func TestHostileSources(t *testing.T) {
	w := newWorld(t)
	w.urls = map[string]string{}
	for _, tree := range []string{"s1", "s2", "future"} {
		w.urls[tree] = serveHonest(t, w.trees[tree])
	}
	refs := map[bool]state{false: w.reference(t, false), true: w.reference(t, true)}
	for _, tc := range cases() {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			t.Log(tc.rule)
			if tc.delta {
				w.checkDelta(t, tc, refs[false])
				return
			}
			w.check(t, tc, refs[tc.skew])
		})
	}
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		w.controls(t, refs[false])
	})
}

// controls show that the harness can succeed through a hostile.Server, so
// that every rejection above is the behaviour's doing: the Honest
// behaviour, and a redirect from http to another http source (allowed),
// each update the endpoint by themselves.
func (w *world) controls(t *testing.T, ref state) {
	for _, o := range []hostile.Options{
		{Behaviour: hostile.Honest, Dir: w.trees["s2"]},
		{Behaviour: hostile.RedirectScheme, Dir: w.trees["s2"], RedirectTo: w.urls["s2"]},
	} {
		src := start(t, o)
		e := w.endpoint(t, nil, false)
		w.installFirst(t, e)
		rc := e.run(t, src.URL)
		if rc.Result != report.Updated || rc.Source != src.URL || len(rc.Attempts) != 0 {
			t.Fatalf("%s: %+v", o.Behaviour, rc)
		}
		checkInstalled(t, e, w.v3)
		if err := sameTrusted(string(o.Behaviour)+": trusted metadata", e.state(t), ref); err != nil {
			t.Error(err)
		}
	}
}

// reference is the state of an endpoint that updated from the honest
// mirror only.
func (w *world) reference(t *testing.T, skew bool) state {
	t.Helper()
	e := w.endpoint(t, nil, false)
	w.installFirst(t, e)
	if skew {
		e.skew.Store(int64(skewed))
	}
	rc := e.run(t, w.honestURL(skew))
	if rc.Result != report.Updated || rc.After["pattern"] != "3.0" {
		t.Fatalf("reference run: %+v", rc)
	}
	// a.ptn comes by delta from an honest source: otherwise the delta
	// cases would test nothing.
	if rc.Deltas != 1 || len(rc.Attempts) != 0 {
		t.Fatalf("reference run: %d files by delta, attempts %+v; want %s by delta", rc.Deltas, rc.Attempts, deltaFile)
	}
	checkInstalled(t, e, w.v3)
	return e.state(t)
}

func (w *world) honestURL(skew bool) string {
	if skew {
		return w.urls["future"]
	}
	return w.urls["s2"]
}

// installFirst brings a new endpoint to the state every case starts
// from: s1 trusted, pattern 2.0 installed.
func (w *world) installFirst(t *testing.T, e *endpoint) {
	t.Helper()
	if rc := e.run(t, w.urls["s1"]); rc.Result != report.Updated || rc.After["pattern"] != "2.0" {
		t.Fatalf("first install: %+v", rc)
	}
	checkInstalled(t, e, w.v2)
}

// startHostile starts the case's source and returns it with the pool an
// endpoint must trust for it (nil without TLS).
func (w *world) startHostile(t *testing.T, tc hostileCase) (*hostile.Server, *x509.CertPool) {
	t.Helper()
	o := tc.o
	if o.Dir == "" {
		o.Dir = w.trees["s2"]
	}
	if tc.alt != "" {
		o.Alt = w.trees[tc.alt]
	}
	if tc.toHonest {
		o.RedirectTo = w.honestURL(tc.skew)
	}
	if tc.body != "" {
		o.Body = w.deltaBody(t, tc.body)
	}
	ip := loopback()
	var pool *x509.CertPool
	if tc.tls {
		conf, p, err := hostile.SelfSigned(ip)
		if err != nil {
			t.Fatal(err)
		}
		o.TLS = conf
		if !tc.untrusted {
			pool = p
		}
	}
	s, err := hostile.Start(ip+":0", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, pool
}

// check runs one case.
func (w *world) check(t *testing.T, tc hostileCase, ref state) {
	src, pool := w.startHostile(t, tc)
	honest := w.honestURL(tc.skew)
	e := w.endpoint(t, pool, tc.quick)
	w.installFirst(t, e)
	before := e.state(t)
	if tc.skew {
		e.skew.Store(int64(skewed))
	}

	// Alone, the hostile source cannot update: the category quits and
	// nothing changes.
	rc := e.run(t, src.URL)
	checkAttempt(t, rc, report.Failed, src.URL, tc.want)
	t.Logf("rejected: %s", rc.Attempts[0].Error)
	after := e.state(t)
	if err := sameDigests("trusted metadata after the hostile source alone", after.trusted, before.trusted); err != nil {
		t.Error(err)
	}
	if err := sameDigests("installed after the hostile source alone", after.installed, before.installed); err != nil {
		t.Error(err)
	}

	// First of two, it is rejected and the honest mirror updates.
	rc = e.run(t, src.URL, honest)
	checkAttempt(t, rc, report.Updated, src.URL, tc.want)
	if rc.Source != honest || rc.After["pattern"] != "3.0" {
		t.Fatalf("updated from %q to %v, want %q and 3.0", rc.Source, rc.After, honest)
	}
	checkInstalled(t, e, w.v3)
	after = e.state(t)
	if err := sameTrusted("trusted metadata", after, ref); err != nil {
		t.Error(err)
	}
	if err := sameDigests("installed", after.installed, ref.installed); err != nil {
		t.Error(err)
	}
	w.checkCache(t, e)
	if tc.o.Behaviour != hostile.Refuse && tc.o.Behaviour != hostile.Honest && src.Misbehaved() == 0 {
		t.Error("the hostile source never misbehaved: the case tests nothing")
	}
}

// checkAttempt checks a category's result and that its one failed
// attempt is src with class want.
func checkAttempt(t *testing.T, rc *report.Category, result report.Result, src string, want failure.Class) {
	t.Helper()
	if rc.Result != result {
		t.Fatalf("result %s, want %s: %+v", rc.Result, result, rc)
	}
	if len(rc.Attempts) != 1 || rc.Attempts[0].Source != src || rc.Attempts[0].Class != want {
		t.Fatalf("attempts %+v, want one by %s of class %s", rc.Attempts, src, want)
	}
}
