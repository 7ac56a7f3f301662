// Package notify is the server's update notifications (docs/update-process.md,
// trigger notify-components; the source document: the server "notifies the agent to
// update components") and the endpoint side that listens for them.
//
// Server side: endpoints hold an authenticated Server-Sent Events stream
// to a Hub (Hub.Handler; the server's middleware authenticates and puts
// the endpoint in the request context with WithEndpoint). Hub.Notify
// records a notification in the store with a delivery for every targeted
// endpoint, agents first: update agents get it at once; clients are
// released when every notified agent has reported it (Hub.Done), or
// Options.AgentTimeout after it was created, whichever comes first.
// Deliveries that could not be sent (endpoint offline, clients held back)
// stay pending in the store and are sent when the endpoint connects.
// Several server processes sharing a PostgreSQL database each run a Hub:
// each polls the store for the notifications created or released by the
// others and sends them to the endpoints connected to it.
//
// Endpoint side: Listen keeps the stream open, reconnects with capped
// exponential backoff and full jitter, resumes with Last-Event-ID, caps
// the size of events, and calls OnEvent once per notification.
//
// The stream (docs/notifications.md):
//
//	: connected
//
//	id: <notification id>
//	event: notify-components
//	data: {"id":"...","versions":{"pattern":"17.736.00"},"created":"..."}
//
//	: ping
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// EventName is the SSE event type ("event:" field) of a notification.
const EventName = "notify-components"

// MaxEventSize bounds the data of one event: Notify refuses an
// announcement whose event would be larger, and Listen skips larger
// events by default.
const MaxEventSize = 256 << 10

// ErrTooLarge: an announcement or event exceeds MaxEventSize.
var ErrTooLarge = errors.New("event too large")

// Endpoint is the authenticated endpoint of a stream.
type Endpoint struct {
	ID     string
	Role   store.Role // informative: the role recorded with each delivery decides agents-first
	Domain string
}

type ctxKey struct{}

// WithEndpoint returns ctx carrying the authenticated endpoint e, as the
// server's middleware must before calling the Hub's handler.
func WithEndpoint(ctx context.Context, e Endpoint) context.Context {
	return context.WithValue(ctx, ctxKey{}, e)
}

// EndpointFrom returns the endpoint WithEndpoint put in ctx.
func EndpointFrom(ctx context.Context) (Endpoint, bool) {
	e, ok := ctx.Value(ctxKey{}).(Endpoint)
	return e, ok && e.ID != ""
}

// Announcement is what Notify announces.
type Announcement struct {
	// Versions maps each component name to its deployed version. It may
	// be empty: the endpoints then update their components without a
	// version floor.
	Versions map[string]string
	// Domain limits the notification to the endpoints of one domain; ""
	// targets every domain.
	Domain string
}

// Event is one notification as an endpoint receives it: the JSON data of
// an SSE event of type EventName whose id is ID.
type Event struct {
	// ID is the notification id. The endpoint puts it in the report of
	// the run the event triggered (api.ReportUpload.Notification), and
	// the server calls Hub.Done with it.
	ID string `json:"id"`
	// Versions maps each announced component to its version: a source
	// holding an older version of any of them is stale for the triggered
	// run. Never nil after decoding by Listen.
	Versions map[string]string `json:"versions"`
	// Domain is the targeted domain ("" for all).
	Domain string `json:"domain,omitempty"`
	// Created is when the server created the notification.
	Created time.Time `json:"created"`
}

// eventOf builds the event of a stored notification.
func eventOf(n store.Notification) (Event, error) {
	ev := Event{ID: n.ID, Domain: n.Domain, Created: n.Created}
	if err := json.Unmarshal(n.Versions, &ev.Versions); err != nil {
		return Event{}, fmt.Errorf("decode versions of notification %s: %w", n.ID, err)
	}
	if ev.Versions == nil {
		ev.Versions = map[string]string{}
	}
	return ev, nil
}

// frame is a notification encoded as an SSE event, shared by every
// stream that sends it.
type frame struct {
	id    string
	bytes []byte
}

// encode returns the SSE event of n.
func encode(n store.Notification) (*frame, error) {
	ev, err := eventOf(n)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	if len(data) > MaxEventSize {
		return nil, fmt.Errorf("encode notification %s: %w: %d bytes", n.ID, ErrTooLarge, len(data))
	}
	b := make([]byte, 0, len(data)+len(n.ID)+40)
	b = append(b, "id: "...)
	b = append(b, n.ID...)
	b = append(b, "\nevent: "+EventName+"\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	return &frame{id: n.ID, bytes: b}, nil
}
