package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// notifyBenchEndpoints is the endpoint count of issue 18's notification
// benchmark (bench/notify -endpoints 100000).
const notifyBenchEndpoints = 100000

// notifyBenchStore returns a store holding notifyBenchEndpoints
// endpoints in domain "bench", 500 of them agents, and their ids.
func notifyBenchStore(b *testing.B, open func(testing.TB, func() time.Time) store.Store) (store.Store, []string) {
	st := open(b, time.Now)
	ctx := context.Background()
	if _, err := st.CreateDomain(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	const batch = 5000
	for start := 0; start < notifyBenchEndpoints; start += batch {
		es := make([]store.Endpoint, batch)
		for k := range es {
			i := start + k
			es[k] = store.Endpoint{Hostname: fmt.Sprint("pc-", i), Domain: "bench",
				CredentialHash: store.HashSecret(fmt.Sprint("cred-", i))}
			if i < 500 {
				es[k].Role, es[k].AgentID = store.RoleAgent, fmt.Sprint("ua-", i)
			}
		}
		if err := st.CreateEndpoints(ctx, es); err != nil {
			b.Fatal(err)
		}
	}
	eps, err := st.ListEndpoints(ctx, store.EndpointFilter{Domain: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	return st, ids
}

// BenchmarkCreateNotification measures recording a notification for
// 100,000 endpoints (a delivery each), as "notify all" does: given
// their ids (CreateNotification), and chosen by the store from the
// domain (CreateDomainNotification, which the notification hub uses).
// Each iteration is one notification.
//
//	go test -run '^$' -bench CreateNotification -benchtime 5x ./internal/store/
func BenchmarkCreateNotification(b *testing.B) {
	versions := json.RawMessage(`{"pattern":"17.736.00"}`)
	for _, be := range []struct {
		name string
		open func(testing.TB, func() time.Time) store.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		b.Run(be.name+"/ids", func(b *testing.B) {
			st, ids := notifyBenchStore(b, be.open)
			ctx := context.Background()
			for b.Loop() {
				if _, err := st.CreateNotification(ctx, store.Notification{Versions: versions, Domain: "bench", AgentsFirst: true}, ids); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/domain", func(b *testing.B) {
			st, _ := notifyBenchStore(b, be.open)
			ctx := context.Background()
			for b.Loop() {
				n, total, err := st.CreateDomainNotification(ctx, store.Notification{Versions: versions, Domain: "bench", AgentsFirst: true})
				if err != nil {
					b.Fatal(err)
				}
				if !n.AgentsFirst || total != notifyBenchEndpoints {
					b.Fatalf("agents first %v, %d deliveries", n.AgentsFirst, total)
				}
			}
		})
	}
}
