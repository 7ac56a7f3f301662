package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// ListenOptions configure Listen. URL, Token, Client and OnEvent are
// required.
type ListenOptions struct {
	// URL is the server's event stream endpoint.
	URL string
	// Token is the endpoint's bearer credential.
	Token string
	// Client sends the request; it must not have a total Timeout (the
	// stream is long-lived) and should pin the server's certificate.
	Client *http.Client
	// OnEvent is called, from Listen's goroutine, for each notification.
	OnEvent func(Event)
	// MinBackoff and MaxBackoff bound the wait before a reconnection
	// (defaults 1s and 2m); the wait doubles after each failed attempt,
	// with full jitter, and resets after a stream that stayed up.
	MinBackoff, MaxBackoff time.Duration
	// Idle is how long a stream may stay silent (no event, no heartbeat)
	// before it is considered dead and reopened (default 90s: three
	// server heartbeats).
	Idle   time.Duration
	Logger *slog.Logger
}

// Bounds of what a stream may send.
const (
	maxLine  = 64 << 10
	maxEvent = 1 << 20
)

// Listen keeps the endpoint's event stream open and calls OnEvent for
// each notification. It reconnects after any failure and returns only
// when ctx is cancelled (with nil) or the options are invalid.
func Listen(ctx context.Context, o ListenOptions) error {
	if o.URL == "" || o.Client == nil || o.OnEvent == nil {
		return errors.New("listen for notifications: URL, Client and OnEvent are required")
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(2*time.Minute, o.MinBackoff)
	}
	if o.Idle <= 0 {
		o.Idle = 90 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	backoff := o.MinBackoff
	for {
		start := time.Now()
		err := listenOnce(ctx, o)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > o.MaxBackoff {
			backoff = o.MinBackoff // the stream stayed up: start over
		}
		wait := time.Duration(rand.Int64N(int64(backoff)) + 1)
		log.Warn("event stream closed; reconnecting", "error", err, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

// listenOnce reads one stream until it fails or goes idle.
func listenOnce(ctx context.Context, o ListenOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+o.Token)
	resp, err := o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("event stream: %s", resp.Status)
	}
	idle := time.AfterFunc(o.Idle, cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4096), maxLine)
	var name string
	var data strings.Builder
	for sc.Scan() {
		idle.Reset(o.Idle)
		line := sc.Text()
		switch {
		case line == "":
			if name == EventName && data.Len() > 0 {
				deliver(o, data.String())
			}
			name = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len()+len(line) > maxEvent {
				return errors.New("event stream: event larger than 1 MiB")
			}
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return errors.New("event stream: closed by the server")
}

func deliver(o ListenOptions, data string) {
	var ev Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.ID == "" || len(ev.Versions) == 0 {
		if o.Logger != nil {
			o.Logger.Warn("ignoring a malformed notification", "data", data)
		}
		return
	}
	o.OnEvent(ev)
}
