package endpoint

import (
	"fmt"
	"slices"
	"sync"

	"github.com/cascade-update/cascade/internal/server/api"
)

// pinSet is the set of server keys an enrolled endpoint accepts: one per
// management server of its site (docs/server.md, "Endpoints with several
// server URLs"). Enrollment records the keys the administrator pinned
// and those the server answered with; a pinned server's status answer
// may add keys (a server joining the site), never remove one: a key
// leaves the set only by enrolling again. It is safe for concurrent use:
// TLS handshakes read it while the server link adds to it.
type pinSet struct {
	mu   sync.Mutex
	pins []api.Fingerprint
	// legacy is the certificate pin of an enrollment made by an earlier
	// version (zero: none), still in pins until the key of the server it
	// matched replaces it; seenKey is that key, once a handshake saw it.
	legacy, seenKey api.Fingerprint
}

// loadPins reads the pins of an enrollment; nil when it pins nothing
// (the server's certificate is then verified against the system roots).
func loadPins(enr enrollment) (*pinSet, error) {
	p := &pinSet{}
	add := func(s string) error {
		fp, err := api.ParseFingerprint(s)
		if err != nil {
			return fmt.Errorf("%s: %w", enrollmentFile, err)
		}
		if !slices.Contains(p.pins, fp) {
			p.pins = append(p.pins, fp)
		}
		return nil
	}
	for _, s := range append([]string{enr.KeyFingerprint}, enr.KeyFingerprints...) {
		if s == "" {
			continue
		}
		if err := add(s); err != nil {
			return nil, err
		}
	}
	if enr.Fingerprint != "" {
		if err := add(enr.Fingerprint); err != nil {
			return nil, err
		}
		p.legacy = p.pins[len(p.pins)-1]
	}
	if len(p.pins) == 0 {
		return nil, nil
	}
	return p, nil
}

// get returns the pins (a handshake's).
func (p *pinSet) get() []api.Fingerprint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pins)
}

// seen is told of each server a handshake accepted: the key of a server
// the legacy certificate pin matched is kept to replace that pin.
func (p *pinSet) seen(key, pin api.Fingerprint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.legacy.IsZero() && pin == p.legacy && key != pin {
		p.seenKey = key
	}
}

// migrate replaces the legacy certificate pin by the key of the server
// it matched, once a handshake saw that key (the certificate pin would
// refuse the server after `cascade server cert renew`), and reports
// whether it did.
func (p *pinSet) migrate() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.legacy.IsZero() || p.seenKey.IsZero() {
		return false
	}
	i := slices.Index(p.pins, p.legacy)
	if slices.Contains(p.pins, p.seenKey) {
		p.pins = slices.Delete(p.pins, i, i+1)
	} else {
		p.pins[i] = p.seenKey
	}
	p.legacy, p.seenKey = api.Fingerprint{}, api.Fingerprint{}
	return true
}

// add adds the keys a pinned server answered with that the set lacks, and
// returns them. Keys that do not parse are ignored.
func (p *pinSet) add(keys []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var added []string
	for _, s := range keys {
		fp, err := api.ParseFingerprint(s)
		if err != nil || slices.Contains(p.pins, fp) {
			continue
		}
		p.pins = append(p.pins, fp)
		added = append(added, fp.String())
	}
	return added
}

// record writes the set into enr: every key pin, the first also as
// key_fingerprint (what earlier versions read), and a legacy certificate
// pin not yet replaced.
func (p *pinSet) record(enr *enrollment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	enr.KeyFingerprint, enr.KeyFingerprints, enr.Fingerprint = "", nil, ""
	for _, fp := range p.pins {
		if fp == p.legacy {
			enr.Fingerprint = fp.String()
			continue
		}
		enr.KeyFingerprints = append(enr.KeyFingerprints, fp.String())
	}
	if len(enr.KeyFingerprints) > 0 {
		enr.KeyFingerprint = enr.KeyFingerprints[0]
	}
}
