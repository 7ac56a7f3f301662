package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// testEndpoint registers an endpoint directly in s's store and returns
// its id and credential.
func testEndpoint(t *testing.T, s *Server, hostname string) (string, string) {
	t.Helper()
	secret, hash, err := store.NewSecret(endpointPrefix)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.st.CreateEndpoint(context.Background(), store.Endpoint{Hostname: hostname, Domain: "default", CredentialHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	return e.ID, secret
}

// reportBody is an upload of a valid report padded to about pad bytes.
func reportBody(t *testing.T, pad int) []byte {
	t.Helper()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := report.Report{ID: "r", Role: "client", Trigger: "scheduled", Started: now, Finished: now, Result: report.Failed,
		Categories: []*report.Category{{Category: category.Components, Result: report.Failed, Error: strings.Repeat("x", pad)}}}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(api.ReportUpload{Report: raw})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload posts body as a report with credential through s's handler.
func upload(ctx context.Context, s *Server, credential string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, api.PathReports, bytes.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+credential)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

// waitHeld waits until the report gate holds want bytes.
func waitHeld(t *testing.T, s *Server, want int64) {
	t.Helper()
	for i := 0; s.reports.held() != want; i++ {
		if i == 1000 {
			t.Fatalf("the gate holds %d bytes, want %d", s.reports.held(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blocked starts an upload that waits in the ingest queue (the ingester
// is not running) until the test ends.
func blocked(t *testing.T, s *Server, credential string, body []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		upload(ctx, s, credential, body)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// TestReportUploadsPerEndpointOneAtATime: while an endpoint's upload is in
// progress its next one is refused with 429 and Retry-After; another
// endpoint's upload goes ahead.
func TestReportUploadsPerEndpointOneAtATime(t *testing.T) {
	s, _ := newTestServer(t, Config{}, nil)
	_, a := testEndpoint(t, s, "a")
	_, b := testEndpoint(t, s, "b")
	body := reportBody(t, 100)
	blocked(t, s, a, body)
	waitHeld(t, s, int64(len(body)))
	w := upload(context.Background(), s, a, body)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("second concurrent upload: %d %q, want 429 with Retry-After", w.Code, w.Body)
	}
	blocked(t, s, b, body)
	waitHeld(t, s, 2*int64(len(body)))
}

// TestIngestMemoryBound: uploads are admitted while the bytes they hold
// (queued, not yet stored) fit Limits.IngestMemory; past it they are
// answered 503 with Retry-After before their body is read, and admitted
// again once the queue drains.
func TestIngestMemoryBound(t *testing.T) {
	big, small := reportBody(t, 2000), reportBody(t, 10)
	s, _ := newTestServer(t, Config{Limits: Limits{IngestMemory: int64(len(big) + len(small) + 100)}}, nil)
	_, a := testEndpoint(t, s, "a")
	_, b := testEndpoint(t, s, "b")
	_, c := testEndpoint(t, s, "c")
	blocked(t, s, a, big)
	waitHeld(t, s, int64(len(big)))
	w := upload(context.Background(), s, b, big)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("an upload over the memory bound: %d %q, want 503 with Retry-After", w.Code, w.Body)
	}
	blocked(t, s, c, small)
	waitHeld(t, s, int64(len(big)+len(small)))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ingest.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitHeld(t, s, 0)
	if w := upload(context.Background(), s, b, big); w.Code != http.StatusCreated {
		t.Fatalf("the refused upload again once the queue drained: %d %q", w.Code, w.Body)
	}
}

// TestReportRatePerEndpoint: an endpoint spends its burst of uploads,
// then gets 429 with Retry-After until its rate allows another; other
// endpoints are not affected.
func TestReportRatePerEndpoint(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	s, _ := newTestServer(t, Config{Limits: Limits{ReportsPerHour: 1, ReportBurst: 2}}, now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ingest.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	_, a := testEndpoint(t, s, "a")
	_, b := testEndpoint(t, s, "b")
	body := reportBody(t, 10)
	for i := range 2 {
		if w := upload(ctx, s, a, body); w.Code != http.StatusCreated {
			t.Fatalf("upload %d within the burst: %d %q", i+1, w.Code, w.Body)
		}
	}
	w := upload(ctx, s, a, body)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "3600" {
		t.Fatalf("past the burst: %d %q Retry-After %q, want 429, 3600", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if w := upload(ctx, s, b, body); w.Code != http.StatusCreated {
		t.Fatalf("another endpoint: %d %q", w.Code, w.Body)
	}
	clock.Add(int64(time.Hour))
	if w := upload(ctx, s, a, body); w.Code != http.StatusCreated {
		t.Fatalf("an hour later: %d %q", w.Code, w.Body)
	}
}

// TestMalformedReportRefused: a report the report package finds invalid
// (here a repeated category, which the store would refuse only when
// writing its batch) is answered 400 with one line, and nothing is
// stored.
func TestMalformedReportRefused(t *testing.T) {
	s, _ := newTestServer(t, Config{}, nil)
	id, a := testEndpoint(t, s, "a")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ingest.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	up := `{"report": {"trigger": "scheduled", "result": "updated", "started": "2030-01-01T00:00:00Z",
		"finished": "2030-01-01T00:00:00Z", "categories": [{"category": "components", "result": "updated"},
		{"category": "components", "result": "up_to_date"}]}}`
	w := upload(ctx, s, a, []byte(up))
	var e api.Error
	if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil ||
		e.Error != "invalid report: category components appears twice" {
		t.Fatalf("repeated category: %d %q", w.Code, w.Body)
	}
	if reps, err := s.st.ListReports(ctx, store.ReportFilter{EndpointID: id}); err != nil || len(reps) != 0 {
		t.Fatalf("stored: %+v %v", reps, err)
	}
}

// countingStore counts AddReports calls.
type countingStore struct {
	reportStore
	calls atomic.Int64
}

func (c *countingStore) AddReports(ctx context.Context, reports []store.Report) error {
	c.calls.Add(1)
	return c.reportStore.AddReports(ctx, reports)
}

// TestBadReportFailsAlone: one report the store refuses in a batch of 64
// fails alone, the others are stored, and finding it costs a few
// transactions (halving), not one per report.
func TestBadReportFailsAlone(t *testing.T) {
	s, _ := newTestServer(t, Config{}, nil)
	id, _ := testEndpoint(t, s, "a")
	cs := &countingStore{reportStore: s.st}
	in := newIngester(cs, s.log, 1)
	const n = 64
	batch := make([]*pendingReport, n)
	for i := range batch {
		r := store.Report{EndpointID: id, Trigger: "scheduled", Result: "updated",
			Categories: []store.CategoryReport{{Category: category.Components, Result: "updated"}}}
		if i == 37 {
			r.Categories = append(r.Categories, store.CategoryReport{Category: category.Components, Result: "failed"})
		}
		batch[i] = &pendingReport{r: r, done: make(chan error, 1)}
	}
	in.write(context.Background(), batch)
	for i, p := range batch {
		err := <-p.done
		if (i == 37) != (err != nil) {
			t.Errorf("report %d: %v", i, err)
		}
	}
	reps, err := s.st.ListReports(context.Background(), store.ReportFilter{EndpointID: id})
	if err != nil || len(reps) != n-1 {
		t.Fatalf("%d reports stored (%v), want %d", len(reps), err, n-1)
	}
	if c := cs.calls.Load(); c > 1+2*6 {
		t.Fatalf("%d transactions for a batch of %d with one bad report, want at most %d", c, n, 1+2*6)
	}
}
