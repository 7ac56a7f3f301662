package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// service is one long-lived part of the server.
type service struct {
	name string
	run  func(ctx context.Context) error
	// critical services stop the server when they return; others are
	// restarted with backoff when they fail.
	critical bool
}

// Backoff bounds of restarted services.
const (
	minRestart = time.Second
	maxRestart = time.Minute
)

// supervise runs every service until ctx is cancelled or a critical
// service returns, then cancels the others and waits for them. It returns
// the first critical service's error (nil after a clean cancellation).
func supervise(ctx context.Context, log *slog.Logger, services []service) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		stopping error
	)
	for _, svc := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := keep(ctx, log, svc)
			if svc.critical {
				once.Do(func() {
					if err == nil && ctx.Err() == nil {
						err = fmt.Errorf("%s stopped", svc.name)
					}
					stopping = err
					cancel()
				})
			}
		}()
	}
	wg.Wait()
	return stopping
}

// keep runs svc, restarting a non-critical service that fails, with
// exponential backoff reset after a minute of good running.
func keep(ctx context.Context, log *slog.Logger, svc service) error {
	delay := minRestart
	for {
		start := time.Now()
		err := svc.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if svc.critical {
			if err != nil {
				return fmt.Errorf("%s: %w", svc.name, err)
			}
			return nil
		}
		if err == nil {
			log.Info("service finished", "service", svc.name)
			return nil
		}
		if time.Since(start) > maxRestart {
			delay = minRestart
		}
		log.Error("service failed; restarting", "service", svc.name, "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, maxRestart)
	}
}
