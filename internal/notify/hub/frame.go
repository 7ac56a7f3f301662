package hub

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/store"
)

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
	// Endpoint, when set, limits the notification to that one endpoint
	// (Domain is then its domain): it is sent at once, whatever its role.
	Endpoint string
}

// eventOf builds the event of a stored notification.
func eventOf(n store.Notification) (notify.Event, error) {
	ev := notify.Event{ID: n.ID, Domain: n.Domain, Created: n.Created}
	if err := json.Unmarshal(n.Versions, &ev.Versions); err != nil {
		return notify.Event{}, fmt.Errorf("decode versions of notification %s: %w", n.ID, err)
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
	b, err := notify.Encode(ev)
	if err != nil {
		return nil, err
	}
	return &frame{id: n.ID, bytes: b}, nil
}
