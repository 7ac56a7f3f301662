// Package notify is the wire format of the server's update notifications
// (docs/notifications.md, trigger notify-components): what the server's
// hub (package notify/hub) writes and the endpoint's listener (package
// notify/listen) reads. It holds the event type (EventName), the event's
// JSON payload (Event) and its bound (MaxEventSize), and the Server-Sent
// Events framing, written by Encode and read by Parser. Both sides import
// it; it imports neither, so the endpoint's listener does not pull in the
// server's store and database drivers.
//
// The stream:
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
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EventName is the SSE event type ("event:" field) of a notification.
const EventName = "notify-components"

// MaxEventSize bounds the data of one event: the hub refuses an
// announcement whose event would be larger, and the listener skips larger
// events by default.
const MaxEventSize = 256 << 10

// ErrTooLarge: an announcement or event exceeds MaxEventSize.
var ErrTooLarge = errors.New("event too large")

// Event is one notification as an endpoint receives it: the JSON data of
// an SSE event of type EventName whose id is ID.
type Event struct {
	// ID is the notification id. The endpoint puts it in the report of
	// the run the event triggered (api.ReportUpload.Notification), and
	// the server calls the hub's Done with it.
	ID string `json:"id"`
	// Versions maps each announced component to its version: a source
	// holding an older version of any of them is stale for the triggered
	// run. Never nil after decoding by Parser.
	Versions map[string]string `json:"versions"`
	// Domain is the targeted domain ("" for all).
	Domain string `json:"domain,omitempty"`
	// Created is when the server created the notification.
	Created time.Time `json:"created"`
}

// Encode returns ev as one SSE event of type EventName whose id is
// ev.ID, as the hub writes it to every stream: "id:", "event:" and one
// "data:" line of JSON, then a blank line. Data larger than MaxEventSize
// is an error wrapping ErrTooLarge.
func Encode(ev Event) ([]byte, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode notification %s: %w", ev.ID, err)
	}
	if len(data) > MaxEventSize {
		return nil, fmt.Errorf("encode notification %s: %w: %d bytes", ev.ID, ErrTooLarge, len(data))
	}
	b := make([]byte, 0, len(data)+len(ev.ID)+40)
	b = append(b, "id: "...)
	b = append(b, ev.ID...)
	b = append(b, "\nevent: "+EventName+"\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	return b, nil
}
