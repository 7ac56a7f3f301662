package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOriginStatus(t *testing.T) {
	c := newOriginClock()
	dir := initOrigin(t, c)
	start := c.Now()
	tests := []struct {
		name       string
		at         time.Duration
		wantCode   int // 0: no error
		wantOut    []string
		wantStderr []string
	}{
		{"fresh", 0, 0, []string{"ROLE", "root", "targets", "bins (8)", "snapshot", "timestamp", "ok"}, nil},
		{"timestamp expiring", 20 * time.Hour, 0, []string{"expiring"}, []string{"warning: timestamp expires in 4h0m0s", "run refresh"}},
		{"timestamp expired", 25 * time.Hour, 1, []string{"expired"}, []string{"warning: timestamp expired 1h0m0s ago"}},
		{"root expiring", 340 * 24 * time.Hour, 1, nil, []string{"warning: root expires in", "root.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Set(start.Add(tt.at))
			var out, errOut bytes.Buffer
			err := runOriginStatus(originStatusOptions{Dir: dir, Now: c.Now}, &out, &errOut)
			var ee *ExitError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantCode != 0 && (!errors.As(err, &ee) || ee.Code != tt.wantCode || !strings.Contains(err.Error(), "expired")):
				t.Fatalf("err = %v, want exit %d about expiry", err, tt.wantCode)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if tt.wantStderr == nil && errOut.Len() != 0 {
				t.Errorf("unexpected stderr %q", errOut.String())
			}
		})
	}
}

func TestOriginRefreshClearsWarnings(t *testing.T) {
	c := newOriginClock()
	dir := initOrigin(t, c)
	c.Advance(6 * 24 * time.Hour) // timestamp expired, snapshot within margin
	var out, errOut bytes.Buffer
	if err := runOriginRefresh(context.Background(), originRefreshOptions{Dir: dir, Now: c.Now}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if want := "re-signed snapshot, timestamp (timestamp version 2)"; !strings.Contains(out.String(), want) {
		t.Errorf("refresh output %q lacks %q", out.String(), want)
	}
	out.Reset()
	if err := runOriginStatus(originStatusOptions{Dir: dir, Now: c.Now}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if errOut.Len() != 0 {
		t.Errorf("warnings after refresh: %s", errOut.String())
	}
	c.Advance(80 * 24 * time.Hour)
	out.Reset()
	if err := runOriginRefresh(context.Background(), originRefreshOptions{Dir: dir, Now: c.Now}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if want := "re-signed targets, snapshot, timestamp, 8 bins"; !strings.Contains(out.String(), want) {
		t.Errorf("refresh output %q lacks %q", out.String(), want)
	}
}

func TestOriginStatusListsDeltas(t *testing.T) {
	c := newOriginClock()
	dir := initOrigin(t, c)
	base := bytes.Repeat([]byte("record 0123456789 abcdefghij\n"), 4096)
	next := append(bytes.Clone(base), "one more record\n"...)
	for i, content := range [][]byte{base, next} {
		f := filepath.Join(t.TempDir(), "lpt.bin")
		if err := os.WriteFile(f, content, 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		o := originPublishOptions{Dir: dir, Component: "pattern", Version: fmt.Sprint(i + 1), Files: []string{f}, Now: c.Now}
		if err := runOriginPublish(context.Background(), o, &out, &errOut); err != nil {
			t.Fatalf("publish: %v (%s)", err, errOut.String())
		}
		if i == 1 && !strings.Contains(out.String(), "made 1 deltas from earlier versions") {
			t.Errorf("publish output lacks the delta: %s", out.String())
		}
	}
	var out, errOut bytes.Buffer
	if err := runOriginStatus(originStatusOptions{Dir: dir, Now: c.Now}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	full := fmt.Sprint(len(next))
	if !strings.Contains(out.String(), "components/pattern/2/lpt.bin  1") || !strings.Contains(out.String(), full) ||
		!strings.Contains(out.String(), "1 deltas: ") {
		t.Errorf("status does not list the delta from 1 to 2 of %s bytes:\n%s", full, out.String())
	}
}
