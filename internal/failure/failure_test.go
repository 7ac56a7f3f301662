package failure

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestClassOf(t *testing.T) {
	base := New(Stale, "fetch timestamp.json", io.EOF)
	wrapped := fmt.Errorf("update components: %w", base)
	tests := []struct {
		err  error
		want Class
		conn bool
	}{
		{nil, "", false},
		{io.EOF, "", false},
		{base, Stale, false},
		{wrapped, Stale, false},
		{New(Unreachable, "dial", nil), Unreachable, true},
		{fmt.Errorf("x: %w", New(TooSlow, "get", nil)), TooSlow, true},
		{New(NotFound, "get", nil), NotFound, false},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.err); got != tt.want {
			t.Errorf("ClassOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if got := ConnectionLevel(tt.err); got != tt.conn {
			t.Errorf("ConnectionLevel(%v) = %v, want %v", tt.err, got, tt.conn)
		}
	}
	if !errors.Is(wrapped, io.EOF) {
		t.Error("Error does not unwrap to its cause")
	}
	if got := wrapped.Error(); got != "update components: fetch timestamp.json: stale: EOF" {
		t.Errorf("message = %q", got)
	}
}

func TestDetail(t *testing.T) {
	inner := errors.New("dial tcp 10.0.0.1:80: connect: connection refused")
	err := fmt.Errorf("agent:ua-1: %w", New(Unreachable, "GET http://10.0.0.1/timestamp.json", inner))
	if got, want := Detail(err), "agent:ua-1: GET http://10.0.0.1/timestamp.json: "+inner.Error(); got != want {
		t.Errorf("Detail = %q, want %q", got, want)
	}
	if got := Detail(New(Stale, "", errors.New("older"))); got != "older" {
		t.Errorf("without an operation: %q", got)
	}
	if got := Detail(errors.New("plain")); got != "plain" {
		t.Errorf("without a class: %q", got)
	}
	if Detail(nil) != "" {
		t.Error("Detail(nil)")
	}
}
