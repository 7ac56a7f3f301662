package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/store"
)

// benchEndpoints is how many endpoints the reports are spread over.
const benchEndpoints = 1000

// benchReport returns a report shaped like a real one: three categories
// and a full JSON document of about 1.5 KB.
func benchReport(ep string, i int) store.Report {
	at := time.Now()
	attempts := make([]string, 6)
	for k := range attempts {
		attempts[k] = fmt.Sprintf(`{"source":"agent:ua-%d","class":"unreachable","detail":"dial tcp 10.1.%d.1:8443: connect: connection refused","ms":%d}`, k, k, 10*k)
	}
	doc := fmt.Sprintf(`{"endpoint":%q,"run":%d,"trigger":"scheduled","categories":{"components":{"result":"updated","source":"agent:ua-7","attempts":[%s]},"domain_settings":{"result":"up-to-date","source":"server"},"programs":{"result":"up-to-date","source":"server"}}}`,
		ep, i, strings.Join(attempts, ","))
	return store.Report{
		EndpointID: ep, Trigger: "scheduled", Started: at.Add(-time.Minute), Finished: at, Result: "ok",
		Categories: []store.CategoryReport{
			{Category: category.Components, Result: "updated", Source: "agent:ua-7",
				VersionsBefore: map[string]string{"pattern": "19.101.00", "engine": "12.5.1003"},
				VersionsAfter:  map[string]string{"pattern": "19.103.00", "engine": "12.5.1003"}, Bytes: 48 << 20},
			{Category: category.DomainSettings, Result: "up-to-date", Source: "server"},
			{Category: category.Programs, Result: "up-to-date", Source: "server"},
		},
		Document: json.RawMessage(doc),
	}
}

// benchStore returns a store holding benchEndpoints endpoints, and their
// IDs.
func benchStore(b *testing.B, open func(testing.TB, func() time.Time) store.Store) (store.Store, []string) {
	st := open(b, time.Now)
	ctx := context.Background()
	if _, err := st.CreateDomain(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, benchEndpoints)
	for i := range ids {
		ep, err := st.CreateEndpoint(ctx, store.Endpoint{Hostname: fmt.Sprint("pc-", i), Domain: "bench",
			CredentialHash: store.HashSecret(fmt.Sprint("cred-", i)), Addresses: []string{fmt.Sprintf("10.0.%d.%d", i/250, i%250)}})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = ep.ID
	}
	return st, ids
}

// BenchmarkAddReports measures report ingestion: one goroutine storing
// batches of the given size, and at least 16 concurrent goroutines (the
// server's request handlers) each storing batches. The metric is reports/s.
//
//	go test -run '^$' -bench AddReports -benchtime 5s ./internal/store/
func BenchmarkAddReports(b *testing.B) {
	for _, be := range []struct {
		name string
		open func(testing.TB, func() time.Time) store.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		for _, batch := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/serial/batch=%d", be.name, batch), func(b *testing.B) {
				benchAdd(b, be.open, batch, false)
			})
		}
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/parallel16/batch=%d", be.name, batch), func(b *testing.B) {
				benchAdd(b, be.open, batch, true)
			})
		}
	}
}

func benchAdd(b *testing.B, open func(testing.TB, func() time.Time) store.Store, batch int, parallel bool) {
	st, ids := benchStore(b, open)
	ctx := context.Background()
	var n atomic.Int64
	add := func() {
		base := int(n.Add(int64(batch))) - batch
		rs := make([]store.Report, batch)
		for i := range rs {
			rs[i] = benchReport(ids[(base+i)%len(ids)], base+i)
		}
		if err := st.AddReports(ctx, rs); err != nil {
			b.Error(err)
		}
	}
	b.ResetTimer()
	if parallel {
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				add()
			}
		})
	} else {
		for b.Loop() {
			add()
		}
	}
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "reports/s")
}
