package server_test

import (
	"bufio"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
)

// openStream opens c's event stream and returns a channel closed when
// the server ends it.
func openStream(t *testing.T, c *api.Client) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Endpoint(api.PathEvents, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Authorize(req)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("event stream: %s", resp.Status)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()
	return ended
}

// TestRoleChangeClosesEventStream: designating an endpoint as update
// agent (or back as client) closes the event stream it opened as what
// it was, so that it reconnects as what it now is.
func TestRoleChangeClosesEventStream(t *testing.T) {
	e := newEnv(t, sqliteDB)
	res, c := e.enroll("pc-1", "10.1.0.9")
	for _, req := range []api.SetRole{{Role: "agent", AgentID: "ua-1"}, {Role: "client"}} {
		ended := openStream(t, c)
		waitConnected(e, res.EndpointID)
		e.call(http.MethodPut, "/api/v1/endpoints/"+res.EndpointID+"/role", req, nil)
		select {
		case <-ended:
		case <-time.After(20 * time.Second): // a guard against hanging, not a timing assertion
			t.Fatalf("the event stream opened before the designation as %s stayed open", req.Role)
		}
		for i := 0; ; i++ { // the server forgets the closed stream before the next one opens
			var ep api.Endpoint
			e.call(http.MethodGet, "/api/v1/endpoints/"+res.EndpointID, nil, &ep)
			if !ep.Connected {
				break
			}
			if i == 500 {
				t.Fatal("the closed stream is still counted as connected")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
