package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// serverKeysTTL is how long the keys read from the database are answered
// before they are read again: a process that joins is pinned by endpoints
// that enroll or report their status after that.
const serverKeysTTL = 10 * time.Second

// keyCache is the site's server keys (api.EnrollResponse.ServerKeys): this
// process's own, those every process recorded in the database, and the
// configured peer_keys.
type keyCache struct {
	own   api.Fingerprint
	peers []string
	cl    store.Cluster // nil: only own and peers
	now   func() time.Time

	mu   sync.Mutex
	keys []string
	read time.Time // when keys were read from the database
}

// record records this process's key in the database.
func (k *keyCache) record(ctx context.Context, url string) error {
	if k.cl == nil {
		return nil
	}
	return k.cl.RecordServerKey(ctx, store.ServerKey{Fingerprint: k.own.String(), URL: url})
}

// get returns the keys, reading the database at most every serverKeysTTL.
// When the database cannot be read the keys read last are answered (at
// least own and the peers): an endpoint only adds pins from them.
func (k *keyCache) get(ctx context.Context) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.keys != nil && (k.cl == nil || now.Sub(k.read) < serverKeysTTL) {
		return k.keys
	}
	var recorded []string
	if k.cl != nil {
		ks, err := k.cl.ServerKeys(ctx)
		if err != nil {
			if k.keys == nil {
				k.keys = siteKeys(k.own, k.peers)
			}
			return k.keys
		}
		for _, r := range ks {
			recorded = append(recorded, r.Fingerprint)
		}
	}
	k.keys, k.read = siteKeys(k.own, append(slices.Clone(k.peers), recorded...)), now
	return k.keys
}
