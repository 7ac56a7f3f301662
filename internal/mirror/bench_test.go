package mirror

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/trust"
)

// BenchmarkRefresh measures what an update agent or the server does after
// each publish: bring a mirror of a repository with 1024 hash bins and 200
// items up to date with one new item version (one bin, the index and the
// top-level metadata change). Baseline: the same copy when nothing
// changed (probe, no commit).
//
//	go test -run '^$' -bench Refresh -benchtime 10x ./internal/mirror
func BenchmarkRefresh(b *testing.B) {
	r, err := repo.Init(filepath.Join(b.TempDir(), "o"), repo.InitOptions{Options: repo.Options{Now: time.Now},
		Settings: repo.Settings{Kind: repo.Vendor, Bins: 1024}})
	if err != nil {
		b.Fatal(err)
	}
	publish := func(name, ver string) {
		it := repo.Item{Category: "components", Name: name, Version: ver, Files: []repo.File{{Name: "f.bin", Data: []byte(name + ver)}}}
		if _, err := r.Publish(context.Background(), it); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 200 {
		publish(fmt.Sprintf("c%03d", i), "1.0")
	}
	h, err := static.New(filepath.Dir(r.PublishedDir()), static.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(func() { srv.Close(); h.Close() })
	root, _ := r.TrustedRoot()
	st, err := trust.Init(filepath.Join(b.TempDir(), "state"), root, trust.Options{Kind: "vendor", Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	o := Options{Store: st, Source: trust.Source{Name: "origin", Base: srv.URL}, Fetcher: fetch.New(fetch.Options{}),
		Dir: filepath.Join(b.TempDir(), "mirror"), Prune: true}
	if _, err := Copy(context.Background(), o); err != nil {
		b.Fatal(err)
	}
	next := 0
	b.Run("changed", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			next++
			publish("c007", fmt.Sprintf("2.%d", next))
			b.StartTimer()
			if res, err := Copy(context.Background(), o); err != nil || res.UpToDate {
				b.Fatalf("copy: %+v %v", res, err)
			}
		}
	})
	b.Run("uptodate", func(b *testing.B) {
		for range b.N {
			if res, err := Copy(context.Background(), o); err != nil || !res.UpToDate {
				b.Fatalf("copy: %+v %v", res, err)
			}
		}
	})
}
