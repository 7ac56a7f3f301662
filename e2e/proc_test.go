//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/testkit"
)

// logTail is how much of each process's output a failed test prints.
const logTail = 48 << 10

// buffer is an io.Writer safe for concurrent use that collects a
// process's output.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tail returns the last n bytes written, marking a cut.
func (b *buffer) tail(n int) string {
	s := b.String()
	if len(s) <= n {
		return s
	}
	return "[...]\n" + s[len(s)-n:]
}

// proc is one long-running cascade process (a daemon: origin serve,
// server run, endpoint run). It runs in its own process group; stop (or
// the end of the test that started it) ends the whole group, and a
// failed test gets the process's output in its log.
type proc struct {
	name           string
	args           []string
	cmd            *exec.Cmd
	stdout, stderr *buffer
	done           chan struct{}
	err            error // the exit status, once done is closed
}

// startProc starts `cascade args...` as a daemon named name. env adds
// variables to the process's environment.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, args: args, stdout: &buffer{}, stderr: &buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(cascadeBin, args...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	// Its own process group, so that stop reaches anything it starts
	// (hooks); and killed if the test binary dies.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Logf("started %s (pid %d): cascade %s", name, p.cmd.Process.Pid, strings.Join(args, " "))
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			p.dump(t)
		}
	})
	return p
}

// cleanEnv is the test's environment without CASCADE_ variables, so
// that a developer's settings do not reach the processes.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASCADE_") {
			env = append(env, kv)
		}
	}
	return env
}

// running says whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends sig to the process group (the process and anything it
// started, such as hooks) and waits for the process to exit; after 10
// seconds it kills the group. It is a no-op once the process has exited.
func (p *proc) stop(sig syscall.Signal) {
	if !p.running() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// dump writes the process's output into the test log.
func (p *proc) dump(t *testing.T) {
	t.Logf("=== %s: cascade %s (exit: %v)\n--- stdout:\n%s\n--- stderr:\n%s", p.name, strings.Join(p.args, " "),
		p.err, p.stdout.tail(logTail), p.stderr.tail(logTail))
}

// waitOutput waits until the process's stdout matches re and returns the
// first submatch (or the whole match without a group).
func (p *proc) waitOutput(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	var m []string
	testkit.Eventually(t, 30*time.Second, p.name+" to print "+re.String(), func() bool {
		if m = re.FindStringSubmatch(p.stdout.String()); m != nil {
			return true
		}
		if !p.running() {
			t.Fatalf("%s exited (%v) before printing %s", p.name, p.err, re)
		}
		return false
	})
	return m[len(m)-1]
}

// cmdError is a one-shot command that failed: its exit status and
// output.
type cmdError struct {
	args           []string
	err            error
	stdout, stderr string
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("cascade %s: %v\nstdout: %s\nstderr: %s", strings.Join(e.args, " "), e.err, e.stdout, e.stderr)
}

func (e *cmdError) Unwrap() error { return e.err }

// exitCode is the exit status of a failed command, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// cascade runs `cascade args...` to completion (at most a minute) and
// returns its stdout; a failure is a *cmdError. Both are logged.
func cascade(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cascadeBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("cascade %s (%s, %v)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), errOr(err, "ok"))
	if err != nil {
		return stdout.String(), &cmdError{args: args, err: err, stdout: stdout.String(), stderr: stderr.String()}
	}
	return stdout.String(), nil
}

// mustCascade is cascade that fails the test on error.
func mustCascade(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := cascade(t, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func errOr(err error, ok string) any {
	if err != nil {
		return err
	}
	return ok
}
