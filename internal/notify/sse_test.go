package notify

import (
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
)

func TestParser(t *testing.T) {
	big := strings.Repeat("x", 300)
	stream := ": connected\r\n\r\n" +
		"id: n1\r\nevent: notify-components\r\ndata: {\"id\":\"n1\",\"versions\":{\"p\":\"1\"}}\r\n\r\n" +
		": ping\n\n" +
		"event: other\ndata: {\"id\":\"x\"}\n\n" + // another type: ignored
		"id: n2\nevent: notify-components\ndata: {\"id\":\"n2\",\"versions\":{\"p\":\"" + big + "\"}}\n\n" + // too large
		"id: n3\nevent: notify-components\ndata: " + big + "\n\n" + // one line too long
		"id: n4\nevent: notify-components\ndata: {not json\n\n" +
		"id: n5\nevent: notify-components\ndata: {\"versions\":\ndata: {\"p\":\"5\"}}\n\n" + // id from the SSE id, data lines joined
		"event: notify-components\ndata: {\"versions\":{}}\n\n" + // no id at all
		"id: n6\nevent: notify-components\ndata: {\"id\":\"n6\"}\n"
	p := NewParser(strings.NewReader(stream), 200)
	type want struct {
		id, skipped string
		versions    map[string]string
	}
	for i, w := range []want{
		{id: "n1", versions: map[string]string{"p": "1"}},
		{id: "n2", skipped: "data larger than 200 bytes"},
		{id: "n3", skipped: "data larger than 200 bytes"},
		{id: "n4", skipped: "malformed data"},
		{id: "n5", versions: map[string]string{"p": "5"}},
		{skipped: "no notification id"},
	} {
		got, err := p.Next(func() {})
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got.ID != w.id || !strings.HasPrefix(got.Skipped, w.skipped) || (w.skipped == "" && got.Skipped != "") {
			t.Fatalf("event %d: %+v, want %+v", i, got, w)
		}
		if w.skipped == "" && (got.Event.ID != w.id || !maps.Equal(got.Event.Versions, w.versions)) {
			t.Fatalf("event %d: %+v", i, got.Event)
		}
	}
	// The last event is not terminated by a blank line: never dispatched.
	if _, err := p.Next(func() {}); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if p.Beats() != 2 {
		t.Fatalf("%d comments counted", p.Beats())
	}
}

// TestEncode: an encoded event reads back as the same notification; one
// over MaxEventSize is refused.
func TestEncode(t *testing.T) {
	ev := Event{ID: "n1", Versions: map[string]string{"pattern": "17.736.00"}, Domain: "berlin"}
	b, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewParser(strings.NewReader(string(b)), MaxEventSize).Next(func() {})
	if err != nil || got.Skipped != "" || got.ID != "n1" || got.Event.Domain != "berlin" || !maps.Equal(got.Event.Versions, ev.Versions) {
		t.Fatalf("read back %+v, %v from %q", got, err, b)
	}
	big := Event{ID: "n2", Versions: map[string]string{"p": strings.Repeat("x", MaxEventSize)}}
	if _, err := Encode(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized event: %v", err)
	}
}
