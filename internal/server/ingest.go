package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/cascade-update/cascade/internal/store"
)

// ingester turns concurrent report uploads into batched writes (group
// commit): each upload waits until its report is stored, and every
// worker writes whatever queued while its previous batch was being
// written, in one transaction. Under load batches grow on their own;
// an idle server writes each report at once.
type ingester struct {
	st       reportStore
	log      *slog.Logger
	queue    chan *pendingReport
	maxBatch int
	workers  int
	metrics  *metrics // counts stored and failed reports (nil: none)
}

// reportStore is what the ingester needs of the database.
type reportStore interface {
	AddReports(ctx context.Context, reports []store.Report) error
}

type pendingReport struct {
	r    store.Report
	done chan error
}

// errIngestStopped answers uploads that arrive while the server stops.
var errIngestStopped = &httpError{code: http.StatusServiceUnavailable, msg: "server is stopping", retryAfter: retryFull}

func newIngester(st reportStore, log *slog.Logger, workers int) *ingester {
	return &ingester{st: st, log: log, queue: make(chan *pendingReport, 4096), maxBatch: 1000, workers: max(workers, 1)}
}

// Add stores r (batched with concurrent ones) and returns it with its ID.
func (in *ingester) Add(ctx context.Context, r store.Report) (store.Report, error) {
	p := &pendingReport{r: r, done: make(chan error, 1)}
	select {
	case in.queue <- p:
	case <-ctx.Done():
		return store.Report{}, ctx.Err()
	}
	select {
	case err := <-p.done:
		return p.r, err
	case <-ctx.Done():
		return store.Report{}, ctx.Err()
	}
}

// Run writes batches until ctx is cancelled, then fails what is queued.
func (in *ingester) Run(ctx context.Context) error {
	done := make(chan struct{})
	for range in.workers {
		go func() {
			defer func() { done <- struct{}{} }()
			in.work(ctx)
		}()
	}
	for range in.workers {
		<-done
	}
	for {
		select {
		case p := <-in.queue:
			p.done <- errIngestStopped
		default:
			return nil
		}
	}
}

func (in *ingester) work(ctx context.Context) {
	batch := make([]*pendingReport, 0, in.maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case p := <-in.queue:
			batch = append(batch, p)
		}
	fill:
		for len(batch) < in.maxBatch {
			select {
			case p := <-in.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		in.write(context.WithoutCancel(ctx), batch)
	}
}

// write stores a batch in one transaction. If it fails, each half is
// written on its own, and so on down to single reports, so that one bad
// report fails alone and costs about 2·log2(n) more transactions, not
// one per report of the batch.
func (in *ingester) write(ctx context.Context, batch []*pendingReport) { in.store(ctx, batch, true) }

// store is write; whole is false for the halves of a failed batch.
func (in *ingester) store(ctx context.Context, batch []*pendingReport, whole bool) {
	reps := make([]store.Report, len(batch))
	for i, p := range batch {
		reps[i] = p.r
	}
	err := in.st.AddReports(ctx, reps)
	switch {
	case err == nil:
		in.count(len(batch), nil)
		for i, p := range batch {
			p.r = reps[i]
			p.done <- nil
		}
	case len(batch) == 1:
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) {
			in.log.Error("store report", "endpoint", batch[0].r.EndpointID, "err", err)
		}
		in.count(1, err)
		batch[0].done <- err
	default:
		if whole {
			in.log.Warn("report batch failed; storing it in halves", "reports", len(batch), "err", err)
		}
		in.store(ctx, batch[:len(batch)/2], false)
		in.store(ctx, batch[len(batch)/2:], false)
	}
}

// count records n reports stored, or failed with err.
func (in *ingester) count(n int, err error) {
	if in.metrics == nil {
		return
	}
	if err != nil {
		in.metrics.reportsRejected.Add(int64(n))
	} else {
		in.metrics.reportsStored.Add(int64(n))
	}
}
