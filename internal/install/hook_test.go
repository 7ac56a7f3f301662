package install

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
)

// shHook runs script with /bin/sh.
func shHook(t *testing.T, script string, env []string) HookOptions {
	return HookOptions{Command: []string{"/bin/sh", "-c", script}, Env: env, Logger: testLogger(t), Timeout: time.Minute}
}

func TestHookEnvironment(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	install(t, s, comp, tree{"pat/a": []byte("1")}, Item{"pattern", "1.0"}, Item{"engine", "5"})
	res, _ := install(t, s, comp, tree{"pat/a": []byte("2")}, Item{"pattern", "2.0"}, Item{"engine", "5"})
	out := filepath.Join(t.TempDir(), "env")
	hr, err := RunHook(context.Background(), shHook(t, `env | grep ^CASCADE_ | sort > "$OUT"; cat "$CASCADE_CURRENT_LINK/pat/a"`,
		append(res.HookEnv(), "OUT="+out)))
	if err != nil {
		t.Fatalf("RunHook: %v (output %q)", err, hr.Output)
	}
	if hr.Output != "2" || hr.ExitCode != 0 || hr.TimedOut || hr.Truncated {
		t.Fatalf("hook result %+v; want the installed file's content as output", hr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		EnvAction:           "install",
		EnvCategory:         "components",
		EnvVersionID:        res.Current.ID,
		EnvInstallDir:       res.Current.Dir,
		EnvCurrentLink:      filepath.Join(s.Dir(), "components", "current"),
		EnvManifest:         res.Current.Dir + ".json",
		EnvVersions:         "engine=5 pattern=2.0",
		EnvPreviousID:       res.Previous.ID,
		EnvPreviousDir:      res.Previous.Dir,
		EnvPreviousVersions: "engine=5 pattern=1.0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && os.Getenv(k) == "" {
			t.Errorf("hook saw unexpected variable %s", k)
		}
	}
	if _, err := os.Stat(got[EnvManifest]); err != nil {
		t.Errorf("manifest path: %v", err)
	}
}

func TestHookEnvWithoutPrevious(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	res, _ := install(t, s, comp, tree{"a": []byte("1")})
	env := strings.Join(res.HookEnv(), "\n")
	for _, kv := range []string{EnvPreviousID + "=", EnvPreviousDir + "=", EnvPreviousVersions + "=", EnvVersions + "="} {
		if !strings.Contains(env+"\n", kv+"\n") {
			t.Errorf("%s not empty in %q", kv, env)
		}
	}
}

func TestHookFailureKeepsInstall(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	files := tree{"a": []byte("installed")}
	res, _ := install(t, s, comp, files)
	hr, err := RunHook(context.Background(), shHook(t, `echo reloading; echo "scanner refused" >&2; exit 3`, res.HookEnv()))
	if !errors.Is(err, ErrHookFailed) || !failure.Is(err, failure.Local) {
		t.Fatalf("RunHook = %v, want ErrHookFailed of class local", err)
	}
	if hr.ExitCode != 3 || !strings.Contains(hr.Output, "reloading") || !strings.Contains(hr.Output, "scanner refused") {
		t.Fatalf("hook result %+v", hr)
	}
	checkCurrent(t, s, comp, files)
	if pend, _ := s.PendingHook(comp); pend == nil {
		t.Fatal("a failed hook is no longer pending")
	}
}

func TestHookTimeout(t *testing.T) {
	opts := shHook(t, `sleep 60 & sleep 60; echo never`, nil)
	opts.Timeout = 200 * time.Millisecond
	hr, err := RunHook(context.Background(), opts)
	if !errors.Is(err, ErrHookTimeout) || !hr.TimedOut {
		t.Fatalf("RunHook = %+v, %v; want a timeout", hr, err)
	}
	if strings.Contains(hr.Output, "never") {
		t.Fatalf("output %q", hr.Output)
	}
}

func TestHookCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := RunHook(ctx, shHook(t, `exit 0`, nil))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrHookFailed) {
		t.Fatalf("RunHook with a cancelled context = %v", err)
	}
}

func TestHookOutputCapped(t *testing.T) {
	opts := shHook(t, `i=0; while [ $i -lt 200 ]; do echo 0123456789; i=$((i+1)); done`, nil)
	opts.MaxOutput = 100
	hr, err := RunHook(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(hr.Output) != 100 || !hr.Truncated || !strings.HasPrefix(hr.Output, "0123456789\n") {
		t.Fatalf("output %d bytes, truncated %v", len(hr.Output), hr.Truncated)
	}
}

func TestHookBadCommand(t *testing.T) {
	for _, cmd := range [][]string{nil, {""}, {filepath.Join(t.TempDir(), "no-such-hook")}} {
		hr, err := RunHook(context.Background(), HookOptions{Command: cmd})
		if !errors.Is(err, ErrHookFailed) || hr.ExitCode != -1 {
			t.Errorf("RunHook(%q) = %+v, %v; want ErrHookFailed", cmd, hr, err)
		}
	}
}
