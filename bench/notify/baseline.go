package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/notify"
)

// broadcaster is the baseline: the least a server can do to notify
// endpoints holding Server-Sent Events streams. It keeps a channel per
// stream and writes each notification to every stream at once: no
// store, no deliveries recorded, no agents first, no resending.
type broadcaster struct {
	heartbeat time.Duration
	mu        sync.Mutex
	streams   map[chan []byte]struct{}
	seq       int
}

func newBroadcaster() *broadcaster {
	return &broadcaster{heartbeat: 25 * time.Second, streams: map[chan []byte]struct{}{}}
}

// ServeHTTP holds one stream: events and heartbeats until the client
// or the server goes.
func (b *broadcaster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan []byte, 4)
	b.mu.Lock()
	b.streams[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.streams, ch)
		b.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, ": hello\n\n")
	f.Flush()
	beat := time.NewTicker(b.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			if _, err := w.Write(ev); err != nil {
				return
			}
		case <-beat.C:
			if _, err := io.WriteString(w, ":\n\n"); err != nil {
				return
			}
		}
		f.Flush()
	}
}

// broadcast sends a notification announcing versions to every stream
// and returns its id.
func (b *broadcaster) broadcast(versions map[string]string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	id := "b" + strconv.Itoa(b.seq)
	data, err := json.Marshal(notify.Event{ID: id, Versions: versions, Created: time.Now()})
	if err != nil {
		return "", err
	}
	ev := []byte(fmt.Sprintf("id: %s\nevent: %s\ndata: %s\n\n", id, notify.EventName, data))
	for ch := range b.streams {
		select {
		case ch <- ev:
		default: // a stream this far behind misses it
		}
	}
	return id, nil
}

func (b *broadcaster) connected() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.streams)
}

// serveBaseline is the server process of the baseline: the broadcaster
// and the driver's control routes.
func serveBaseline(ctx context.Context, o options) (http.Handler, ready) {
	b := newBroadcaster()
	var rd ready
	for i := range o.Endpoints {
		if i < o.Agents {
			rd.Agents = append(rd.Agents, "agent-"+strconv.Itoa(i))
		} else {
			rd.Others = append(rd.Others, "client-"+strconv.Itoa(i))
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", b)
	mux.HandleFunc("POST /bench/notify", func(w http.ResponseWriter, r *http.Request) {
		id, err := b.broadcast(map[string]string{"pattern": r.URL.Query().Get("version"), "engine": "7.1"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, id)
	})
	mux.HandleFunc("POST /bench/done", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /bench/counts", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]map[string]int{"agent": {}, "client": {}}) // nothing recorded
	})
	statsRoute(mux, b.connected)
	return mux, rd
}
