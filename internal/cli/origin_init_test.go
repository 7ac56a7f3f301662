package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/testkit"
)

// newOriginClock returns a settable clock for the origin command tests.
func newOriginClock() *testkit.Clock {
	return testkit.NewClock(time.Now().UTC().Truncate(time.Second))
}

// initOrigin creates a small vendor repository for a test.
func initOrigin(t *testing.T, c *testkit.Clock) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "origin")
	var out, errOut bytes.Buffer
	if err := runOriginInit(originInitOptions{Dir: dir, Bins: 8, Keep: 3, Now: c.Now}, &out, &errOut); err != nil {
		t.Fatalf("init: %v (stderr %s)", err, errOut.String())
	}
	return dir
}

// mainOrigin runs the whole command line, as cmd/cascade does.
func mainOrigin(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestOriginInit(t *testing.T) {
	c := newOriginClock()
	dir := filepath.Join(t.TempDir(), "origin")
	var out bytes.Buffer
	err := runOriginInit(originInitOptions{Dir: dir, Bins: 16, TimestampExpiry: 12 * time.Hour, Now: c.Now}, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"16 hash bins", "keeping 14 versions", filepath.Join(dir, "keys"),
		filepath.Join(dir, "published", "vendor", "metadata", "1.root.json")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "published", "vendor", "metadata", "1.bins-f.json")); err != nil {
		t.Errorf("bins: %v", err)
	}
	settings, err := os.ReadFile(filepath.Join(dir, "repo.json"))
	if err != nil || !strings.Contains(string(settings), `"timestamp": "12h0m0s"`) {
		t.Errorf("repo.json = %s, %v; want the timestamp expiry given", settings, err)
	}
}

func TestOriginInitUsageErrors(t *testing.T) {
	c := newOriginClock()
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    originInitOptions
		want string
	}{
		{"non-empty dir", originInitOptions{Dir: nonEmpty}, "not empty"},
		{"bins not a power of two", originInitOptions{Bins: 100}, "power of two"},
		{"negative keep", originInitOptions{Keep: -2}, "negative"},
		{"negative expiry", originInitOptions{SnapshotExpiry: -time.Hour}, "negative"},
		{"margin beyond expiry", originInitOptions{TimestampExpiry: time.Hour}, "margin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.Dir == "" {
				tt.o.Dir = filepath.Join(t.TempDir(), "origin")
			}
			tt.o.Now = c.Now
			var out bytes.Buffer
			err := runOriginInit(tt.o, &out, &out)
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestOriginInitDeltaFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 0, `"deltas": 14`},
		{[]string{"--deltas", "0"}, 0, `"deltas": 0`},
		{[]string{"--deltas", "3", "--delta-max-ratio", "0.25"}, 0, `"delta_max_ratio": 0.25`},
		{[]string{"--deltas", "-1"}, 2, ""},
		{[]string{"--delta-max-ratio", "2"}, 2, ""},
	} {
		dir := filepath.Join(t.TempDir(), "origin")
		code, _, stderr := mainOrigin(append([]string{"origin", "init", dir}, tt.args...)...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d (%s)", tt.args, code, tt.code, stderr)
			continue
		}
		if tt.want == "" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, "repo.json")); err != nil || !strings.Contains(string(b), tt.want) {
			t.Errorf("%v: repo.json = %s, %v; want %s", tt.args, b, err, tt.want)
		}
	}
}
