package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
)

// request asks the daemon's loop for a run.
type request struct {
	trigger plan.Trigger
	reply   chan *report.Report
}

// SocketPath is the control socket of the endpoint whose data directory
// is dataDir. It is created 0600: only the daemon's user may trigger runs.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, socketName) }

// controlListening, if set, is called with the socket's path as soon as
// the control socket listens, before its mode is set (tests).
var controlListening func(path string)

// listenControl listens on the unix socket sock so that at no moment may
// another user connect to it: the socket is created in a new directory
// only its owner can enter (0700), made 0600 there, and only then renamed
// to sock (replacing a stale socket of an earlier run). A socket created
// at sock directly would exist with the umask's mode until its chmod.
func listenControl(sock string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(sock), ".control-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s") // short: a socket path has ~100 bytes at most
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	// The path it was created at goes with dir; the daemon removes sock.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if controlListening != nil {
		controlListening(tmp)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, sock); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Run is the endpoint daemon: a scheduled run every Interval plus a random
// jitter, and a run whenever `cascade endpoint update --now` asks through
// the control socket. It returns when ctx is cancelled.
func (e *Endpoint) Run(ctx context.Context) error {
	reqs := make(chan request)
	sock := SocketPath(e.cfg.DataDir)
	ln, err := listenControl(sock)
	if err != nil {
		return fmt.Errorf("endpoint control socket: %w", err)
	}
	srv := &http.Server{Handler: e.control(ctx, reqs), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
		<-served
		os.Remove(sock)
	}()
	stopAgent, err := e.agent.start(ctx)
	if err != nil {
		return err
	}
	defer stopAgent()
	notes, connected, stopListening := e.listen(ctx)
	defer stopListening()
	e.log.Info("endpoint running", "id", e.cfg.ID, "role", e.cfg.Role, "interval", e.cfg.Schedule.Interval, "socket", sock)
	timer := time.NewTimer(e.jitter())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			e.run(ctx, plan.Scheduled)
			timer.Reset(e.cfg.Schedule.Interval + e.jitter())
		case r := <-reqs:
			r.reply <- e.run(ctx, r.trigger)
		case <-connected:
			// The server can be reached again: send the reports that
			// waited for it, above all a notified run's, which releases
			// the clients waiting for this agent, or tells the server that
			// this endpoint is done.
			e.server.flush(ctx)
		case ev := <-notes:
			e.log.Info("notified by the server", "notification", ev.ID, "versions", ev.Versions)
			if _, err := e.Notified(ctx, ev); err != nil {
				e.log.Error("update run", "trigger", plan.NotifyComponents, "notification", ev.ID, "error", err)
			}
		}
	}
}

// maxQueuedNotifications bounds the notifications waiting for a run; when
// more arrive during a long run, the oldest is dropped (a later
// notification announces versions at least as new).
const maxQueuedNotifications = 16

// listen holds an enrolled endpoint's event stream to its server and
// returns the notifications it receives, to be run in order; a channel
// that delivers when a stream opens (the server can be reached again:
// time to send queued reports); and the function that waits for the
// listener after ctx is cancelled. A standalone endpoint gets channels
// that never deliver.
func (e *Endpoint) listen(ctx context.Context) (<-chan notify.Event, <-chan struct{}, func()) {
	notes := make(chan notify.Event, maxQueuedNotifications)
	connected := make(chan struct{}, 1)
	if e.server == nil {
		return notes, connected, func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		onConnect := func() {
			select {
			case connected <- struct{}{}:
			default: // a flush is already due
			}
		}
		err := e.server.listen(ctx, onConnect, func(ev notify.Event) {
			for {
				select {
				case notes <- ev:
					return
				default:
				}
				select {
				case old := <-notes:
					e.log.Warn("too many notifications queued; dropping the oldest", "notification", old.ID)
				default:
				}
			}
		})
		if err != nil {
			e.log.Error("notifications", "err", err)
		}
	}()
	return notes, connected, func() { <-done }
}

func (e *Endpoint) jitter() time.Duration {
	if e.cfg.Schedule.Jitter <= 0 {
		return 0
	}
	return rand.N(e.cfg.Schedule.Jitter)
}

func (e *Endpoint) run(ctx context.Context, t plan.Trigger) *report.Report {
	rep, err := e.Update(ctx, t, nil)
	if err != nil {
		e.log.Error("update run", "trigger", t, "error", err)
		now := e.now()
		rep = &report.Report{Trigger: t, Started: now, Finished: now, Result: report.Failed}
	}
	return rep
}

// control serves the control socket: POST /update runs an update now and
// answers with its report.
func (e *Endpoint) control(ctx context.Context, reqs chan<- request) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /update", func(w http.ResponseWriter, r *http.Request) {
		req := request{trigger: plan.Manual, reply: make(chan *report.Report, 1)}
		select {
		case reqs <- req:
		case <-r.Context().Done():
			return
		case <-ctx.Done():
			http.Error(w, "endpoint stopping", http.StatusServiceUnavailable)
			return
		}
		select {
		case rep := <-req.reply:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(rep)
		case <-ctx.Done():
			http.Error(w, "endpoint stopping", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /rollback/{category}", func(w http.ResponseWriter, r *http.Request) {
		cat, err := category.Parse(r.PathValue("category"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := e.Rollback(r.Context(), cat)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	return mux
}

// controlClient talks to the daemon's control socket.
func controlClient(dataDir string) *http.Client {
	sock := SocketPath(dataDir)
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
}

// ErrNoDaemon: no endpoint daemon listens on the data directory's
// control socket.
var ErrNoDaemon = errors.New("no endpoint daemon is running (start `cascade endpoint run`)")

// RequestRollback asks the daemon of dataDir to roll cat back. It returns
// ErrNoDaemon when no daemon runs, so the caller can roll back itself.
func RequestRollback(ctx context.Context, dataDir string, cat category.Category) (install.Result, error) {
	var res install.Result
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://endpoint/rollback/"+string(cat), nil)
	if err != nil {
		return res, err
	}
	resp, err := controlClient(dataDir).Do(req)
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("endpoint daemon: roll back %s: %s", cat, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return res, fmt.Errorf("endpoint daemon: roll back %s: %w", cat, err)
	}
	return res, nil
}

// RequestUpdate asks the daemon of dataDir to run an update now and
// returns the run's report.
func RequestUpdate(ctx context.Context, dataDir string) (*report.Report, error) {
	client := controlClient(dataDir)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://endpoint/update", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the endpoint daemon (is `cascade endpoint run` running?): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("endpoint daemon: %s", resp.Status)
	}
	var rep report.Report
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, report.MaxReportSize)).Decode(&rep); err != nil {
		return nil, errors.Join(errors.New("endpoint daemon: bad report"), err)
	}
	return &rep, nil
}
