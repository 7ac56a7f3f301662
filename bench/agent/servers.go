package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a server process the benchmark started.
type process struct {
	cmd *exec.Cmd
}

// stop ends the process and waits for it.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// rssMiB is the resident memory of the process and its children (nginx's
// workers), from /proc.
func (p *process) rssMiB() (float64, error) {
	pids := append([]int{p.cmd.Process.Pid}, children(p.cmd.Process.Pid)...)
	var kb int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, fmt.Errorf("read RSS: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				kb += n
			}
		}
	}
	return float64(kb) / 1024, nil
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; take what
		// follows the last ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// startAgent runs this program as the agent process, with state as its
// state directory, and returns its URL.
func startAgent(ctx context.Context, t *servedTree, state, profile string, noFastPath bool) (string, *process, error) {
	args := []string{"serve", "-dir", abs(t.dir), "-state", abs(state), "-root", abs(t.root), "-listen", "127.0.0.1:0"}
	if profile != "" {
		args = append(args, "-cpuprofile", abs(profile))
	}
	if noFastPath {
		args = append(args, "-no-fast-path")
	}
	return startSelf(ctx, args...)
}

// startSelf runs this program with args; the process prints "listening
// ADDR" once it serves.
func startSelf(ctx context.Context, args ...string) (string, *process, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	p := &process{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		p.stop()
		return "", nil, fmt.Errorf("start %s: %q %v", args[0], line, err)
	}
	go io.Copy(io.Discard, out)
	return "http://" + addr + "/", p, nil
}

// nginxConf serves dir on addr the way a tuned static server would:
// sendfile, no access log, long keep-alive.
const nginxConf = `%s
worker_processes auto;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    types { application/json json; }
    default_type application/octet-stream;
    client_body_temp_path %s/tmp;
    server {
        listen %s;
        root %s;
        location / { }
    }
}
`

// startNginx runs nginx on dir and returns its URL.
func startNginx(ctx context.Context, work, dir string) (string, *process, error) {
	prefix := abs(filepath.Join(work, "nginx"))
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers must read the temporary tree
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, user, prefix, prefix, prefix, addr, abs(dir))), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, "nginx", "-p", prefix, "-c", conf, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start nginx: %w", err)
	}
	p := &process{cmd: cmd}
	u := "http://" + addr + "/"
	for i := 0; ; i++ {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return u, p, nil
		}
		if i == 100 {
			p.stop()
			return "", nil, errors.New("nginx did not start (see its error log above)")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
