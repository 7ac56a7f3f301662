package trust

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
)

// Size caps for metadata whose length is not signed (root, timestamp) and
// defaults for those whose signed meta carries no length.
const (
	MaxRootSize      = 512 << 10
	MaxTimestampSize = 64 << 10
	MaxMetaSize      = 16 << 20
	// MaxRootRotations bounds the root versions fetched in one probe.
	MaxRootRotations = 64
)

// Source is where a probe reads: a name for errors and reports
// ("agent:ua-1", "server", a URL) and the base URL of the source tree.
type Source struct {
	Name string
	Base string
}

// metaURL returns the URL of a metadata file of the store's repository.
func (s *Store) metaURL(src Source, name string) string {
	return strings.TrimRight(src.Base, "/") + "/" + s.kind + "/metadata/" + url.PathEscape(name)
}

// View is the verified state of one source. Its methods are safe for
// concurrent use.
type View struct {
	store *Store
	src   Source
	f     *fetch.Fetcher

	mu  sync.Mutex
	tm  *trustedmetadata.TrustedMetadata
	raw state // verified bytes, to persist on Commit
	// roots are the root versions verified by rotation in this probe.
	roots map[int64][]byte
	// Same is set when the source's timestamp equals the trusted one.
	same bool
}

// Probe verifies what src serves against the trusted metadata: root
// rotation, timestamp, snapshot and top-level targets. It writes nothing.
// A source whose timestamp or snapshot is older than the trusted one is
// failure.Stale.
func (s *Store) Probe(ctx context.Context, src Source, f *fetch.Fetcher) (*View, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	tm, err := trustedmetadata.New(st.root)
	if err != nil {
		return nil, failure.New(failure.Local, "load trusted root", err)
	}
	tm.RefTime = s.now().UTC()
	v := &View{store: s, src: src, f: f, tm: tm, raw: state{root: st.root, roles: map[string][]byte{}}}
	// The timestamp is requested at once, in parallel with the root
	// rotation check, so a probe costs one round trip; it is verified only
	// after the root is final.
	ctx, cancel := context.WithCancel(ctx)
	pending := v.requestTimestamp(ctx, st)
	defer func() {
		cancel()
		<-pending
	}()
	if err := v.rotateRoot(ctx); err != nil {
		return nil, err
	}
	ts := <-pending
	pending <- ts
	if err := v.loadTimestamp(ctx, st, ts); err != nil {
		return nil, err
	}
	if err := v.loadSnapshot(ctx, st); err != nil {
		return nil, err
	}
	if err := v.loadTargets(ctx, st); err != nil {
		return nil, err
	}
	for role, b := range st.roles {
		v.raw.roles[role] = b // candidates, re-verified when used
	}
	return v, nil
}

// Source returns the source the view was probed from.
func (v *View) Source() Source { return v.src }

// UpToDate reports whether the source's timestamp equals the trusted one.
func (v *View) UpToDate() bool { return v.same }

// Versions returns the view's timestamp and snapshot versions.
func (v *View) Versions() (timestamp, snapshot int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tm.Timestamp.Signed.Version, v.tm.Snapshot.Signed.Version
}

func (v *View) get(ctx context.Context, name string, maxLen int64) ([]byte, error) {
	b, err := v.f.Bytes(ctx, v.store.metaURL(v.src, name), maxLen)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.src.Name, err)
	}
	return b, nil
}

func (v *View) rotateRoot(ctx context.Context) error {
	for i := 0; i < MaxRootRotations; i++ {
		name := fmt.Sprintf("%d.root.json", v.tm.Root.Signed.Version+1)
		b, err := v.get(ctx, name, MaxRootSize)
		if failure.Is(err, failure.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := v.tm.UpdateRoot(b); err != nil {
			return v.verr("verify "+name, err)
		}
		v.raw.root = b
		if v.roots == nil {
			v.roots = map[int64][]byte{}
		}
		v.roots[v.tm.Root.Signed.Version] = b
	}
	return failure.Newf(failure.Verification, v.src.Name+": rotate root", "more than %d new root versions", MaxRootRotations)
}

// tsReply is the answer to the timestamp request.
type tsReply struct {
	resp fetch.Response
	err  error
	// tagFor is the trusted timestamp version the request's ETag was for
	// (0: no ETag sent).
	tagFor int64
}

// requestTimestamp starts the conditional GET of timestamp.json. The
// channel holds the reply once it arrives; it has room for one reply.
func (v *View) requestTimestamp(ctx context.Context, st *state) chan tsReply {
	var local int64
	if st.timestamp != nil {
		if ts, err := metadata.Timestamp().FromBytes(st.timestamp); err == nil {
			local = ts.Signed.Version
		}
	}
	v.store.mu.Lock()
	prev := v.store.etags[v.src.Base]
	v.store.mu.Unlock()
	tag := ""
	if prev.tag != "" && prev.version == local && local != 0 {
		tag = prev.tag
	}
	ch := make(chan tsReply, 1)
	go func() {
		resp, err := v.f.Conditional(ctx, v.store.metaURL(v.src, "timestamp.json"), MaxTimestampSize, tag)
		if tag == "" {
			local = 0
		}
		ch <- tsReply{resp: resp, err: err, tagFor: local}
	}()
	return ch
}

func (v *View) loadTimestamp(ctx context.Context, st *state, reply tsReply) error {
	var local int64
	if st.timestamp != nil {
		if ts, err := v.tm.UpdateTimestamp(st.timestamp); ts != nil || v.tm.Timestamp != nil {
			local = v.tm.Timestamp.Signed.Version
			v.raw.timestamp = st.timestamp
		} else {
			v.store.log.Debug("ignoring local timestamp", "error", err)
		}
	}
	op := v.src.Name + ": timestamp.json"
	resp, err := reply.resp, reply.err
	if err == nil && resp.NotModified && reply.tagFor != local {
		// The ETag was for a timestamp that did not verify after all.
		resp, err = v.f.Conditional(ctx, v.store.metaURL(v.src, "timestamp.json"), MaxTimestampSize, "")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", v.src.Name, err)
	}
	if resp.NotModified {
		v.same = true
		if v.tm.Timestamp.Signed.IsExpired(v.tm.RefTime) {
			return failure.Newf(failure.Verification, op, "timestamp version %d is expired", local)
		}
		return nil
	}
	_, err = v.tm.UpdateTimestamp(resp.Body)
	switch {
	case errors.Is(err, &metadata.ErrEqualVersionNumber{}):
		v.same = true
		if v.tm.Timestamp.Signed.IsExpired(v.tm.RefTime) {
			return failure.Newf(failure.Verification, op, "timestamp version %d is expired", local)
		}
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		return failure.New(failure.Stale, op, fmt.Errorf("older than the trusted metadata: %w", err))
	case err != nil:
		return v.verr("timestamp.json", err) // verr names the source
	default:
		v.raw.timestamp = resp.Body
	}
	if resp.ETag != "" {
		v.store.mu.Lock()
		v.store.etags[v.src.Base] = etag{tag: resp.ETag, version: v.tm.Timestamp.Signed.Version}
		v.store.mu.Unlock()
	}
	return nil
}

func (v *View) loadSnapshot(ctx context.Context, st *state) error {
	meta := v.tm.Timestamp.Signed.Meta["snapshot.json"]
	if meta == nil {
		return failure.Newf(failure.Verification, v.src.Name+": timestamp.json", "no snapshot meta")
	}
	if st.snapshot != nil {
		if _, err := v.tm.UpdateSnapshot(st.snapshot, true); err == nil {
			v.raw.snapshot = st.snapshot
			return nil
		}
	}
	name := fmt.Sprintf("%d.snapshot.json", meta.Version)
	b, err := v.get(ctx, name, maxLen(meta.Length))
	if err != nil {
		return err
	}
	if _, err := v.tm.UpdateSnapshot(b, false); err != nil {
		return v.verr("verify "+name, err)
	}
	v.raw.snapshot = b
	return nil
}

func (v *View) loadTargets(ctx context.Context, st *state) error {
	meta := v.tm.Snapshot.Signed.Meta["targets.json"]
	if meta == nil {
		return failure.Newf(failure.Verification, v.src.Name+": snapshot", "no targets meta")
	}
	if st.targets != nil {
		if _, err := v.tm.UpdateTargets(st.targets); err == nil {
			v.raw.targets = st.targets
			return nil
		}
	}
	name := fmt.Sprintf("%d.targets.json", meta.Version)
	b, err := v.get(ctx, name, maxLen(meta.Length))
	if err != nil {
		return err
	}
	if _, err := v.tm.UpdateTargets(b); err != nil {
		return v.verr("verify "+name, err)
	}
	v.raw.targets = b
	return nil
}

func maxLen(signed int64) int64 {
	if signed > 0 {
		return signed
	}
	return MaxMetaSize
}

// verr classifies a go-tuf verification error of op.
func (v *View) verr(op string, err error) error {
	return failure.New(failure.Verification, v.src.Name+": "+op, err)
}
