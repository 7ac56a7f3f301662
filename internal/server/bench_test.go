package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// benchReport is a typical scheduled run: three categories, the
// components from the second source after the first failed.
func benchReport(i int) json.RawMessage {
	now := time.Now().UTC()
	rep := report.Report{ID: fmt.Sprintf("r%d", i), Role: "client", Trigger: "scheduled", Started: now.Add(-3 * time.Second), Finished: now,
		Categories: []*report.Category{
			{Category: category.DomainSettings, Result: report.UpToDate, Source: "agent:ua-1",
				Before: map[string]string{"policy": "12", "deployment": "40", "domain.default": "3"},
				After:  map[string]string{"policy": "12", "deployment": "40", "domain.default": "3"}},
			{Category: category.Components, Result: report.Updated, Source: "server", Bytes: 48 << 20,
				Before:   map[string]string{"pattern": "17.734.00", "engine": "12.0.1001"},
				After:    map[string]string{"pattern": "17.735.00", "engine": "12.0.1001"},
				Attempts: []report.Attempt{{Source: "agent:ua-1", Class: failure.Unreachable, Error: "dial tcp 10.1.0.5:8080: connect: connection refused"}}},
			{Category: category.Programs, Result: report.UpToDate, Source: "agent:ua-1",
				Before: map[string]string{"agent-core": "14.0.2"}, After: map[string]string{"agent-core": "14.0.2"}},
		}}
	rep.Finish(now)
	b, _ := json.Marshal(rep)
	return b
}

// BenchmarkReportIngestion measures update reports accepted per second
// through the HTTP API (TLS, endpoint authentication, decoding, batched
// writes), from 64 endpoints uploading at once, each over its own
// connection.
func BenchmarkReportIngestion(b *testing.B) {
	for _, db := range []struct {
		name string
		kind dbKind
	}{{"sqlite", sqliteDB}, {"postgres", postgresDB}} {
		b.Run(db.name, func(b *testing.B) { benchIngestion(b, db.kind) })
	}
}

func benchIngestion(b *testing.B, db dbKind) {
	const uploaders = 64
	// Each uploader sends far more reports than an endpoint may: no rate.
	e := newEnv(b, db, func(c *server.Config) { c.Limits.ReportsPerHour = -1 })
	ctx := context.Background()
	clients := make([]*api.Client, uploaders)
	for i := range clients {
		secret, hash, err := store.NewSecret("cascade_ep_")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.st.CreateEndpoint(ctx, store.Endpoint{Hostname: fmt.Sprintf("bench-%d", i), Domain: "default",
			CredentialHash: hash, Addresses: []string{fmt.Sprintf("10.1.%d.%d", i/250, i%250)}}); err != nil {
			b.Fatal(err)
		}
		clients[i] = e.client(secret)
	}
	up := api.ReportUpload{Report: benchReport(0)}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := c.Call(ctx, http.MethodPost, api.PathReports, nil, up, nil); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
}
