package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wrkResult is what one wrk run reported.
type wrkResult struct {
	rps, bytesPerSec float64
	bad              int64 // non-2xx/3xx responses and socket errors
}

// runWrk runs wrk against u with conns connections for d, sending
// If-None-Match: etag when etag is set, and Connection: close (a new
// connection for every request) when fresh is set.
func runWrk(ctx context.Context, u, etag string, fresh bool, conns int, d time.Duration) (wrkResult, error) {
	threads := min(runtime.NumCPU(), conns)
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s"}
	if etag != "" {
		args = append(args, "-H", "If-None-Match: "+etag)
	}
	if fresh {
		args = append(args, "-H", "Connection: close")
	}
	out, err := exec.CommandContext(ctx, "wrk", append(args, u)...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", u, err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("wrk %s: %w\n%s", u, err, out)
	}
	if r.bad > 0 {
		log.Printf("warning: %s: %d bad responses or socket errors", u, r.bad)
	}
	log.Printf("  %-70s %10.0f req/s %8.3f GB/s", u, r.rps, r.bytesPerSec/1e9)
	return r, nil
}

// parseWrk reads Requests/sec, Transfer/sec and the error lines of wrk's
// output.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	found := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
			found++
		case len(f) == 2 && f[0] == "Transfer/sec:":
			r.bytesPerSec = parseSize(f[1])
			found++
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			r.bad += n
		case strings.HasPrefix(strings.TrimSpace(line), "Socket errors:"):
			for _, part := range strings.Split(strings.TrimPrefix(strings.TrimSpace(line), "Socket errors:"), ",") {
				if p := strings.Fields(part); len(p) == 2 && p[0] != "timeout" {
					n, _ := strconv.ParseInt(p[1], 10, 64)
					r.bad += n
				}
			}
		}
	}
	if found != 2 {
		return r, fmt.Errorf("unexpected wrk output")
	}
	return r, nil
}

// parseSize parses wrk's sizes: 1.23GB, 456.7MB, 12KB, 99B (binary units).
func parseSize(s string) float64 {
	mult := 1.0
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	v, _ := strconv.ParseFloat(s, 64)
	return v * mult
}

// checkNotModified fetches u, then asks again with its ETag and checks
// that the answer is 304; it returns the ETag.
func checkNotModified(ctx context.Context, u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == "" {
		return "", fmt.Errorf("GET %s: %s, ETag %q", u, resp.Status, etag)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		return "", fmt.Errorf("conditional GET %s: %s, want 304", u, resp.Status)
	}
	return etag, nil
}

// rssWithConns opens n keep-alive connections to u's server, makes one
// request on each, and returns the server's RSS while all are open.
func rssWithConns(ctx context.Context, p *process, u, etag string, n int) (float64, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return 0, err
	}
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := oneRequest(ctx, pu, etag)
			conns[i] = c
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("open %d connections: %w", n, err)
	}
	time.Sleep(time.Second) // let the server settle (idle connections of the agent release their read buffers after 0.1 s)
	return p.rssMiB()
}

// oneRequest dials u's host, sends one keep-alive GET (conditional on
// etag if set) and reads the answer (200, or 304 with etag), leaving the
// connection open.
func oneRequest(ctx context.Context, u *url.URL, etag string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	cond, want := "", 200
	if etag != "" {
		cond, want = "If-None-Match: "+etag+"\r\n", 304
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", u.RequestURI(), u.Host, cond)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return c, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return c, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return c, nil
}
