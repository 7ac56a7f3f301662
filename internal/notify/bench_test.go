package notify

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

const clientsHelperEnv = "CASCADE_NOTIFY_CLIENTS"

// TestNotifyClientsHelper is the client process of BenchmarkNotify: it
// opens one event stream per endpoint id read from stdin (raw HTTP/1.1 on
// TCP, from several loopback source addresses), prints "connected" when
// all are open and "received" when every stream got one notification.
func TestNotifyClientsHelper(t *testing.T) {
	addr := os.Getenv(clientsHelperEnv)
	if addr == "" {
		t.Skip("helper process of BenchmarkNotify")
	}
	var ids []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		ids = append(ids, sc.Text())
	}
	var connected, received atomic.Int64
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := streamOnce(addr, id, i, &connected, &received, int64(len(ids))); err != nil {
				fmt.Println("error", err)
			}
		}()
	}
	wg.Wait()
}

func streamOnce(addr, id string, i int, connected, received *atomic.Int64, n int64) error {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 9, byte(1+i%8))}
	c, err := (&net.Dialer{LocalAddr: local, Timeout: 30 * time.Second}).Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", id)
	r := bufio.NewReaderSize(c, 1024)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(line, ": connected"):
			if connected.Add(1) == n {
				fmt.Println("connected")
			}
		case strings.HasPrefix(line, "event: "+EventName):
			if received.Add(1) == n {
				fmt.Println("received")
			}
			return nil
		}
	}
}

// BenchmarkNotify measures the time from Notify until every one of
// 10,000 connected endpoints (50 agents, 9,950 clients) has received the
// notification, agents first: the agents acknowledge as soon as they
// receive it, which releases the clients. It reports the server's heap
// with 10,000 open streams. The clients run in a child process (the
// file-descriptor limit is per process).
//
//	go test -run '^$' -bench BenchmarkNotify -benchtime 1x ./internal/notify/
func BenchmarkNotify(b *testing.B) {
	const agents, total = 50, 10000
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "db.sqlite"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	st.CreateDomain(ctx, "d")
	eps := map[string]Endpoint{}
	var ids, agentIDs []string
	for i := 0; i < total; i++ {
		_, h, _ := store.NewSecret("b")
		e := store.Endpoint{Hostname: strconv.Itoa(i), Domain: "d", CredentialHash: h, Role: store.RoleClient}
		if i < agents {
			e.Role, e.AgentID = store.RoleAgent, fmt.Sprintf("ua-%d", i)
		}
		e, err := st.CreateEndpoint(ctx, e)
		if err != nil {
			b.Fatal(err)
		}
		eps[e.ID] = Endpoint{ID: e.ID, Role: e.Role, Domain: e.Domain}
		ids = append(ids, e.ID)
		if i < agents {
			agentIDs = append(agentIDs, e.ID)
		}
	}
	hub, err := NewHub(Options{Store: st, AgentTimeout: time.Minute, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.9:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if e, ok := eps[id]; ok {
			r = r.WithContext(WithEndpoint(r.Context(), e))
		}
		hub.Handler().ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	for b.Loop() {
		b.StopTimer()
		cmd := exec.Command(os.Args[0], "-test.run=^TestNotifyClientsHelper$")
		cmd.Env = append(os.Environ(), clientsHelperEnv+"="+ln.Addr().String())
		cmd.Stdin = strings.NewReader(strings.Join(ids, "\n"))
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		waitFor(b, lines, "connected")
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "server-heap-MiB")
		b.ReportMetric(float64(hub.ConnectedCount()), "streams")
		b.StartTimer()
		start := time.Now()
		id, err := hub.Notify(ctx, Announcement{Versions: map[string]string{"pattern": "2.0"}})
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range agentIDs { // agents update at once and report
			if err := hub.Done(ctx, a, id, true); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, lines, "received")
		b.ReportMetric(time.Since(start).Seconds(), "s-to-all")
		b.StopTimer()
		cmd.Wait()
		b.StartTimer()
	}
}

func waitFor(b *testing.B, lines *bufio.Scanner, want string) {
	for lines.Scan() {
		if lines.Text() == want {
			return
		}
		if strings.HasPrefix(lines.Text(), "error") {
			b.Fatal(lines.Text())
		}
	}
	b.Fatalf("client process ended before %q", want)
}
