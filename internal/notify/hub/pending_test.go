package hub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

// gatedStore holds its first PendingNotificationsOf until gate is
// closed, and records how many endpoints each call asked for.
type gatedStore struct {
	store.Store
	gate  chan struct{}
	mu    sync.Mutex
	sizes []int
}

func (g *gatedStore) PendingNotificationsOf(ctx context.Context, ids []string) (map[string][]store.Notification, error) {
	g.mu.Lock()
	first := len(g.sizes) == 0
	g.sizes = append(g.sizes, len(ids))
	g.mu.Unlock()
	if first {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Store.PendingNotificationsOf(ctx, ids)
}

func (g *gatedStore) calls() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sizes)
}

// TestStreamsOpeningTogetherShareAStoreRead: the streams that open while
// the store is read for another are read together, in one query, and
// each gets what is pending for it.
func TestStreamsOpeningTogetherShareAStoreRead(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		const others = 20
		fx.endpoint("first", "berlin", store.RoleClient)
		for i := range others {
			fx.endpoint(fmt.Sprint("c", i), "berlin", store.RoleClient)
		}
		gs := &gatedStore{Store: fx.st, gate: make(chan struct{})}
		o := fx.options()
		o.Store = gs
		s := fx.serve(o, false)
		id := fx.notify(s, Announcement{Domain: "berlin", Versions: map[string]string{"pattern": "2"}})

		first := fx.listen(s, "first")
		testkit.Eventually(t, patience, "the first stream reading the store", func() bool { return len(gs.calls()) == 1 })
		ls := make([]*testListener, others)
		for i := range ls {
			ls[i] = fx.listen(s, fmt.Sprint("c", i))
		}
		testkit.Eventually(t, patience, "the other streams waiting for the read", func() bool {
			s.hub.pmu.Lock()
			defer s.hub.pmu.Unlock()
			return len(s.hub.pwait) == others
		})
		close(gs.gate)
		first.expect(t, id)
		for _, l := range ls {
			l.expect(t, id)
		}
		if got, want := gs.calls(), []int{1, others}; !slices.Equal(got, want) {
			t.Fatalf("store reads of %v endpoints, want %v", got, want)
		}
	})
}
