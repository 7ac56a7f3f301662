package hub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// markStore records the MarkDelivered calls, with the bubble's time of
// each.
type markStore struct {
	store.Store
	mu    sync.Mutex
	start time.Time
	calls []markCall
}

type markCall struct {
	id    string
	eps   []string
	after time.Duration
}

func (m *markStore) MarkDelivered(_ context.Context, id string, eps []string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, markCall{id: id, eps: slices.Sorted(slices.Values(eps)), after: time.Since(m.start)})
	return int64(len(eps)), nil
}

func (m *markStore) recorded() []markCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

// TestClientRecordsWaitForTheBurst: an agent's delivery record is
// written at once; clients' records wait until no client event was
// written for clientRecordQuiet (at most clientRecordMax), and a stop
// writes those still waiting.
func TestClientRecordsWaitForTheBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := &markStore{start: time.Now()}
		h, err := New(Options{Store: ms})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.recordDeliveries(ctx)
		}()
		defer func() { cancel(); <-done }() // also when the test fails
		agent := Endpoint{ID: "ep_a", Role: store.RoleAgent}
		client := func(id string) Endpoint { return Endpoint{ID: id, Role: store.RoleClient} }

		h.markDelivered(client("ep_c1"), "ntf_1")
		h.markDelivered(agent, "ntf_1")
		synctest.Wait()
		if got := ms.recorded(); len(got) != 1 || !slices.Equal(got[0].eps, []string{"ep_a"}) || got[0].after != 0 {
			t.Fatalf("at once: %+v, want the agent's record only", got)
		}
		// A client event every 200 ms (at 0.1 s, 0.3 s, ...) keeps the
		// clients' records waiting until clientRecordMax.
		time.Sleep(100 * time.Millisecond)
		for i := 0; len(ms.recorded()) == 1 && i < 30; i++ {
			h.markDelivered(client(fmt.Sprint("ep_c", i)), "ntf_1")
			time.Sleep(200 * time.Millisecond)
			synctest.Wait()
		}
		if got := ms.recorded(); len(got) > 1 && got[1].after != clientRecordMax {
			t.Fatalf("clients recorded after %s, want %s (the most they wait)", got[1].after, clientRecordMax)
		}
		got := ms.recorded()
		if len(got) != 2 {
			t.Fatalf("records %+v: the clients' were not written within %s", got, clientRecordMax)
		}
		// A burst's last client record is written clientRecordQuiet after it.
		last := time.Since(ms.start)
		h.markDelivered(client("ep_z"), "ntf_2")
		time.Sleep(clientRecordQuiet - time.Millisecond)
		synctest.Wait()
		if got := ms.recorded(); len(got) != 2 {
			t.Fatalf("client recorded before the quiet time: %+v", got[2:])
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		got = ms.recorded()
		if len(got) != 3 || got[2].id != "ntf_2" || got[2].after != last+clientRecordQuiet {
			t.Fatalf("records %+v, want ntf_2's at %s", got, last+clientRecordQuiet)
		}
		// Stopping writes what waits.
		h.markDelivered(client("ep_y"), "ntf_3")
		cancel()
		<-done
		got = ms.recorded()
		if len(got) != 4 || got[3].id != "ntf_3" || got[3].after != last+clientRecordQuiet {
			t.Fatalf("records %+v, want ntf_3's at the stop", got)
		}
	})
}
