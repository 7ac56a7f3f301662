package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
)

// Hook defaults.
const (
	// DefaultHookTimeout bounds a hook when HookOptions.Timeout is zero.
	DefaultHookTimeout = 5 * time.Minute
	// DefaultHookOutput is how many bytes of output are kept when
	// HookOptions.MaxOutput is zero.
	DefaultHookOutput = 64 << 10
	// hookWaitDelay is how long RunHook waits for the output pipes to
	// close after the hook was killed.
	hookWaitDelay = 2 * time.Second
)

// Hook errors, tested with errors.Is. Both carry failure.Local.
var (
	// ErrHookFailed: the hook could not start or exited unsuccessfully.
	ErrHookFailed = errors.New("hook failed")
	// ErrHookTimeout: the hook ran longer than its timeout and was killed.
	ErrHookTimeout = errors.New("hook timed out")
)

// HookOptions configure RunHook.
type HookOptions struct {
	// Command is the program and its arguments (no shell is involved;
	// use {"/bin/sh", "-c", "..."} for one). Command[0] is looked up in
	// PATH if it has no slash.
	Command []string
	// Env is added to the environment of the cascade process (later
	// entries win); pass Result.HookEnv() here.
	Env []string
	// Dir is the working directory (default: that of the cascade process).
	Dir string
	// Timeout bounds the hook (zero: DefaultHookTimeout). On expiry the
	// hook and every process in its process group are killed.
	Timeout time.Duration
	// MaxOutput caps the captured output, stdout and stderr together
	// (zero: DefaultHookOutput).
	MaxOutput int
	// Logger receives the hook's start and outcome (default: discard).
	Logger *slog.Logger
}

// HookResult is what a hook did, for the report.
type HookResult struct {
	// Output is the start of the hook's stdout and stderr, interleaved.
	Output string
	// Truncated: the hook wrote more than MaxOutput bytes.
	Truncated bool
	// ExitCode is the hook's exit status (-1 if it did not exit normally).
	ExitCode int
	// TimedOut: the hook was killed at its timeout.
	TimedOut bool
}

// Environment variables set by Result.HookEnv. The *_DIR values are
// absolute paths.
const (
	// EnvAction is "install" or "rollback".
	EnvAction = "CASCADE_ACTION"
	// EnvCategory is the category: components, domain_settings, programs.
	EnvCategory = "CASCADE_CATEGORY"
	// EnvVersionID is the id of the installed version, e.g. "v7".
	EnvVersionID = "CASCADE_VERSION_ID"
	// EnvInstallDir is the installed version's directory; it does not
	// change while the version stays current or previous.
	EnvInstallDir = "CASCADE_INSTALL_DIR"
	// EnvCurrentLink is DIR/<cat>/current, which always names the
	// installed version: the path consumers should read from.
	EnvCurrentLink = "CASCADE_CURRENT_LINK"
	// EnvManifest is the installed version's manifest (JSON, a Record).
	EnvManifest = "CASCADE_MANIFEST"
	// EnvVersions lists the installed items as space-separated
	// name=version pairs, sorted by name.
	EnvVersions = "CASCADE_VERSIONS"
	// EnvPreviousID, EnvPreviousDir and EnvPreviousVersions describe the
	// previous version (the rollback target); empty when there is none.
	EnvPreviousID       = "CASCADE_PREVIOUS_VERSION_ID"
	EnvPreviousDir      = "CASCADE_PREVIOUS_DIR"
	EnvPreviousVersions = "CASCADE_PREVIOUS_VERSIONS"
)

// HookEnv returns the hook's environment for r, as KEY=VALUE strings.
func (r Result) HookEnv() []string {
	env := []string{
		EnvAction + "=" + string(r.Action),
		EnvCategory + "=" + string(r.Category),
		EnvVersionID + "=" + r.Current.ID,
		EnvInstallDir + "=" + r.Current.Dir,
		EnvCurrentLink + "=" + r.CurrentLink,
		EnvManifest + "=" + r.Current.Dir + ".json",
		EnvVersions + "=" + itemList(r.Current.Items),
	}
	var prev Version
	if r.Previous != nil {
		prev = *r.Previous
	}
	return append(env,
		EnvPreviousID+"="+prev.ID,
		EnvPreviousDir+"="+prev.Dir,
		EnvPreviousVersions+"="+itemList(prev.Items),
	)
}

// RunHook runs the hook command and waits for it. A hook that cannot
// start, exits unsuccessfully or times out is an error (ErrHookFailed or
// ErrHookTimeout, class failure.Local); the HookResult is filled in either
// way. The installed version is never changed by a hook's outcome.
func RunHook(ctx context.Context, opts HookOptions) (HookResult, error) {
	const op = "run hook"
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(opts.Command) == 0 || opts.Command[0] == "" {
		return HookResult{ExitCode: -1}, failure.New(failure.Local, op, fmt.Errorf("%w: no command", ErrHookFailed))
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	limit := opts.MaxOutput
	if limit <= 0 {
		limit = DefaultHookOutput
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, opts.Command[0], opts.Command[1:]...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Dir = opts.Dir
	out := &cappedBuffer{limit: limit}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = hookWaitDelay
	setProcessGroup(cmd)
	log.Info("install: running hook", "command", opts.Command)
	err := cmd.Run()
	res := HookResult{Output: out.String(), Truncated: out.truncated(), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: %s: %w", ErrHookFailed, filepath.Base(opts.Command[0]), ctx.Err())
	case errors.Is(hctx.Err(), context.DeadlineExceeded):
		res.TimedOut = true
		err = fmt.Errorf("%w after %v: %s", ErrHookTimeout, timeout, filepath.Base(opts.Command[0]))
	case err != nil:
		err = fmt.Errorf("%w: %s: %w", ErrHookFailed, filepath.Base(opts.Command[0]), err)
	}
	if err != nil {
		log.Warn("install: hook failed", "command", opts.Command, "exit", res.ExitCode, "err", err)
		return res, failure.New(failure.Local, op, err)
	}
	log.Info("install: hook done", "command", opts.Command)
	return res, nil
}

// cappedBuffer keeps the first limit bytes written to it and counts the
// rest. The hook's stdout and stderr write to it from two goroutines.
type cappedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	total int64
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total += int64(len(p))
	if room := c.limit - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *cappedBuffer) truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total > int64(c.buf.Len())
}
