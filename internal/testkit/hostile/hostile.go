// Package hostile is a configurable misbehaving update source, for the
// hostile-source suite, the end-to-end suite and benchmarks.
//
// A hostile source wraps an honest source tree (a directory with the
// layout of ARCHITECTURE.md, "The source tree": DIR/vendor/metadata/...,
// DIR/vendor/targets/...) and misbehaves in exactly one configured way
// (a Behaviour): it refuses connections, hangs, trickles, sends an endless
// body, redirects in a loop or to another scheme, tampers with what it
// serves, replays another validly signed tree (rolled back, expired or
// frozen), mixes two states of the repository, truncates or pads bodies,
// answers an HTTP error, or serves bytes of its choosing under a
// target's name. docs/hostile-sources.md lists every behaviour
// with the failure class (package failure) an endpoint must report for it
// and the rule of docs/update-process.md that says why.
//
// New returns the http.Handler of the behaviours that happen inside HTTP;
// Start serves any behaviour on a given address, including those that
// happen below HTTP (Refuse, Reset, Hang, Garbage, HeaderFlood), over plain HTTP or TLS
// (see SelfSigned). Options.Match narrows the misbehaviour to some
// requests (only targets, only one metadata role, ...); every other
// request is answered honestly from the tree, so a source can, for
// example, serve valid metadata and tampered payloads.
//
// RefreshedCopy (and testkit.CopyTree) build the other trees that
// Rollback, Expired, Freeze and Mix serve from a repository made with
// package repo.
package hostile

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/index"
)

// Behaviour is one way a source misbehaves.
type Behaviour string

// The behaviours. Each comment says what the source does; the class an
// endpoint must report is in docs/hostile-sources.md.
const (
	// Honest serves the tree unchanged (a control, and the answer to
	// every request that Options.Match does not select).
	Honest Behaviour = "honest"

	// Refuse: nothing listens on the address; connections are refused.
	// Start only.
	Refuse Behaviour = "refuse"
	// Reset accepts each connection and closes it at once. Start only.
	Reset Behaviour = "reset"
	// Hang accepts each connection and never reads or answers. Start only.
	Hang Behaviour = "hang"
	// Garbage reads the request and answers bytes that are not HTTP.
	// Start only.
	Garbage Behaviour = "garbage"
	// HeaderFlood reads the request and answers a status line followed by
	// header lines forever. Start only.
	HeaderFlood Behaviour = "header-flood"

	// Silent reads the request and never sends the response headers.
	Silent Behaviour = "silent"
	// Stall sends the headers and the first half of the body, then nothing.
	Stall Behaviour = "stall"
	// Trickle sends the file at Options.TrickleBytes every
	// Options.TrickleEvery (default one byte every 20ms: 50 B/s).
	Trickle Behaviour = "trickle"
	// Endless sends the file and then spaces forever, without a
	// Content-Length (valid JSON stays valid: only a cap stops a reader).
	Endless Behaviour = "endless"

	// RedirectLoop redirects path to path?hop=1 and back, forever.
	RedirectLoop Behaviour = "redirect-loop"
	// RedirectChain redirects to path?hop=N+1 forever, never repeating a
	// URL.
	RedirectChain Behaviour = "redirect-chain"
	// RedirectScheme redirects every request to Options.RedirectTo plus
	// the request path: an http URL from an https source (a downgrade),
	// ftp://..., file://...
	RedirectScheme Behaviour = "redirect-scheme"

	// Tamper flips one byte in the middle of every file it serves.
	Tamper Behaviour = "tamper"
	// Rollback serves Options.Alt, a complete, validly signed tree that
	// is older than what the endpoint trusts.
	Rollback Behaviour = "rollback"
	// Expired serves Options.Alt, a validly signed tree whose timestamp
	// has expired (see RefreshedCopy).
	Expired Behaviour = "expired"
	// Freeze serves Options.Alt, the very state the endpoint trusts,
	// after a newer one exists; once its timestamp expires an endpoint
	// must refuse it.
	Freeze Behaviour = "freeze"
	// Foreign serves Options.Alt, a tree signed by the keys of another
	// repository.
	Foreign Behaviour = "foreign"
	// Mix serves timestamp.json (and the root history and targets) from
	// Options.Dir, and the roles of Options.MixRoles from Options.Alt,
	// under the names Dir's timestamp and snapshot ask for: a mix of two
	// states of the repository.
	Mix Behaviour = "mix"

	// Truncate declares the file's true length, sends the first half and
	// drops the connection.
	Truncate Behaviour = "truncate"
	// ShortLength declares half the file's length and sends that much: a
	// well-formed reply that is shorter than the file.
	ShortLength Behaviour = "short-length"
	// Oversize appends Options.Pad spaces to every file (declared in
	// Content-Length unless Options.HideLength).
	Oversize Behaviour = "oversize"
	// Status answers Options.Status (default 500) to every request.
	Status Behaviour = "status"
	// Replace answers 200 with Options.Body (its length declared) in
	// place of the file: bytes of the source's choosing under a target's
	// name, such as another delta or a decompression bomb.
	Replace Behaviour = "replace"
)

// connectionLevel are the behaviours that happen below HTTP.
var connectionLevel = []Behaviour{Refuse, Reset, Hang, Garbage, HeaderFlood}

// behaviours is every behaviour New or Start accepts.
var behaviours = []Behaviour{Honest, Refuse, Reset, Hang, Garbage, HeaderFlood, Silent, Stall, Trickle, Endless,
	RedirectLoop, RedirectChain, RedirectScheme, Tamper, Rollback, Expired, Freeze, Foreign, Mix,
	Truncate, ShortLength, Oversize, Status, Replace}

// ConnectionLevel reports whether b happens below HTTP, so that only Start
// can serve it.
func (b Behaviour) ConnectionLevel() bool { return slices.Contains(connectionLevel, b) }

// Options configure a hostile source.
type Options struct {
	// Behaviour is the one way the source misbehaves. Required.
	Behaviour Behaviour
	// Dir is the honest source tree. Required for every behaviour that
	// happens inside HTTP.
	Dir string
	// Alt is the other tree: what Rollback, Expired, Freeze and Foreign
	// serve instead of Dir, and where Mix takes Options.MixRoles from.
	Alt string
	// Match selects, by URL path (for example
	// "/vendor/metadata/timestamp.json"), the requests that misbehave;
	// the others are served honestly from Dir. nil selects every request.
	// See Metadata, Targets, Payload and Role.
	Match func(urlPath string) bool
	// Status is the status code of Status (default 500).
	Status int
	// RetryAfter, if set, is the Retry-After header Status sends (for
	// example "1" with 503: a source that says it is busy, forever).
	RetryAfter string
	// RedirectTo is the base URL RedirectScheme sends requests to; the
	// request path is appended ("http://127.0.0.5:8080/", "ftp://h/",
	// "file:///").
	RedirectTo string
	// TrickleBytes and TrickleEvery are the pace of Trickle (default 1
	// byte every 20ms).
	TrickleBytes int
	TrickleEvery time.Duration
	// Pad is how many bytes Oversize appends (default 1 MiB + 1, more
	// than any metadata cap of package trust allows for timestamp.json).
	Pad int64
	// MixRoles are the roles Mix takes from Alt: "snapshot", "targets",
	// and "bins" for every hash-bin role. Default: all three.
	MixRoles []string
	// HideLength sends the bodies of Tamper, Oversize and ShortLength
	// without a Content-Length (chunked), so a client must enforce its
	// limits on what it reads rather than on what is declared.
	HideLength bool
	// Body is what Replace serves.
	Body []byte
	// TLS, if set, makes Start serve HTTPS (or, for the connection-level
	// behaviours, TLS) with it; see SelfSigned. New ignores it.
	TLS *tls.Config
}

// Defaults of Options.
const (
	DefaultStatus       = 500
	DefaultTrickleBytes = 1
	DefaultTrickleEvery = 20 * time.Millisecond
	DefaultPad          = 1<<20 + 1
)

// withDefaults fills the zero fields of o and checks it.
func (o Options) withDefaults() (Options, error) {
	if !slices.Contains(behaviours, o.Behaviour) {
		return o, fmt.Errorf("hostile source: unknown behaviour %q", o.Behaviour)
	}
	if o.Status == 0 {
		o.Status = DefaultStatus
	}
	if o.Status < 100 || o.Status > 999 {
		return o, fmt.Errorf("hostile source: invalid status %d", o.Status)
	}
	if o.TrickleBytes <= 0 {
		o.TrickleBytes = DefaultTrickleBytes
	}
	if o.TrickleEvery <= 0 {
		o.TrickleEvery = DefaultTrickleEvery
	}
	if o.Pad <= 0 {
		o.Pad = DefaultPad
	}
	if len(o.MixRoles) == 0 {
		o.MixRoles = []string{"snapshot", "targets", "bins"}
	}
	if o.Behaviour.ConnectionLevel() {
		return o, nil
	}
	if o.Dir == "" {
		return o, fmt.Errorf("hostile source: behaviour %s needs Dir", o.Behaviour)
	}
	switch o.Behaviour {
	case Rollback, Expired, Freeze, Foreign, Mix:
		if o.Alt == "" {
			return o, fmt.Errorf("hostile source: behaviour %s needs Alt", o.Behaviour)
		}
	case RedirectScheme:
		if o.RedirectTo == "" {
			return o, errors.New("hostile source: behaviour redirect-scheme needs RedirectTo")
		}
	case Replace:
		if o.Body == nil {
			return o, errors.New("hostile source: behaviour replace needs Body")
		}
	}
	for _, d := range []string{o.Dir, o.Alt} {
		if d == "" {
			continue
		}
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return o, fmt.Errorf("hostile source: tree %s is not a directory (%v)", d, err)
		}
	}
	return o, nil
}

// Metadata selects the requests for metadata files (".../metadata/...").
func Metadata(urlPath string) bool { return strings.Contains(urlPath, "/metadata/") }

// Targets selects the requests for targets (".../targets/..."), category
// indexes included.
func Targets(urlPath string) bool { return strings.Contains(urlPath, "/targets/") }

// Payload selects the targets that are neither a category index
// (<kind>/targets/<category>/<sha256>.index.json) nor a delta (Delta):
// the files that are installed, which an endpoint streams to disk.
func Payload(urlPath string) bool {
	_, rest, ok := strings.Cut(urlPath, "/targets/")
	if !ok {
		return false
	}
	isIndex := strings.Count(rest, "/") == 1 && strings.HasSuffix(rest, ".index.json")
	return !isIndex && !Delta(urlPath)
}

// Delta selects the deltas (targets named <file>.from-<version>.cdlt,
// docs/deltas.md), which an endpoint applies to the version it holds.
func Delta(urlPath string) bool {
	return strings.Contains(urlPath, "/targets/") && strings.HasSuffix(urlPath, index.DeltaExt)
}

// Role selects the requests for one metadata role: "timestamp"
// (timestamp.json) or any versioned role ("root", "snapshot", "targets",
// "bins-00f": N.<role>.json). Role("bins") selects every hash bin.
func Role(role string) func(urlPath string) bool {
	return func(urlPath string) bool {
		r, ok := metaRole(urlPath)
		return ok && (r == role || role == "bins" && strings.HasPrefix(r, "bins-"))
	}
}
