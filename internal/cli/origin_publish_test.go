package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeOriginInput(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOriginPublish(t *testing.T) {
	c := newOriginClock()
	dir := initOrigin(t, c)
	in := writeOriginInput(t, "lpt.zip", "pattern")
	sig := writeOriginInput(t, "lpt.sig", "signature")
	var out bytes.Buffer
	o := originPublishOptions{Dir: dir, Component: "pattern", Version: "17.735.00", Files: []string{in, sig}, Now: c.Now}
	if err := runOriginPublish(context.Background(), o, &out, &out); err != nil {
		t.Fatal(err)
	}
	if want := "published components/pattern 17.735.00: 2 files (timestamp version 2)"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "published", "vendor", "targets", "components", "pattern", "17.735.00", "*.lpt.zip"))
	if len(matches) != 1 {
		t.Errorf("published files %v", matches)
	}
	// Programs, and pruning with --keep.
	for i, v := range []string{"1.0", "1.1", "1.2"} {
		out.Reset()
		o := originPublishOptions{Dir: dir, Program: "agent", Version: v, Keep: 2,
			Files: []string{writeOriginInput(t, "agent.pkg", v)}, Now: c.Now}
		if err := runOriginPublish(context.Background(), o, &out, &out); err != nil {
			t.Fatal(err)
		}
		if pruned := strings.Contains(out.String(), "pruned 1 file of versions beyond the last 2"); pruned != (i == 2) {
			t.Errorf("publish %s output %q", v, out.String())
		}
	}
}

func TestOriginPublishUsageErrors(t *testing.T) {
	c := newOriginClock()
	dir := initOrigin(t, c)
	in := writeOriginInput(t, "f.bin", "x")
	ctx := context.Background()
	var out bytes.Buffer
	if err := runOriginPublish(ctx, originPublishOptions{Dir: dir, Component: "c", Version: "2", Files: []string{in}, Now: c.Now}, &out, &out); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    originPublishOptions
		want string
	}{
		{"neither kind", originPublishOptions{Version: "1", Files: []string{in}}, "--component NAME or --program NAME"},
		{"both kinds", originPublishOptions{Component: "a", Program: "b", Version: "1", Files: []string{in}}, "not both"},
		{"no version", originPublishOptions{Component: "a", Files: []string{in}}, "--version"},
		{"no files", originPublishOptions{Component: "a", Version: "1"}, "FILE"},
		{"negative keep", originPublishOptions{Component: "a", Version: "1", Keep: -1, Files: []string{in}}, "negative"},
		{"missing file", originPublishOptions{Component: "a", Version: "1", Files: []string{in + ".missing"}}, "no such file"},
		{"bad name", originPublishOptions{Component: "a/b", Version: "1", Files: []string{in}}, "not allowed"},
		{"bad version", originPublishOptions{Component: "a", Version: "1..0", Files: []string{in}}, "separators"},
		{"same version", originPublishOptions{Component: "c", Version: "2", Files: []string{in}}, "already published"},
		{"older version", originPublishOptions{Component: "c", Version: "1.9", Files: []string{in}}, "older than the newest published (2)"},
		{"not a repository", originPublishOptions{Dir: t.TempDir(), Component: "a", Version: "1", Files: []string{in}}, "not a repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.Dir == "" {
				tt.o.Dir = dir
			}
			tt.o.Now = c.Now
			err := runOriginPublish(ctx, tt.o, &out, &out)
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

func TestOriginCommandLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "origin")
	if code, _, stderr := mainOrigin("origin", "init", dir, "--bins", "4"); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	in := writeOriginInput(t, "lpt.zip", "x")
	code, stdout, stderr := mainOrigin("origin", "publish", dir, "--component", "pattern", "--version", "1.0", in)
	if code != 0 || !strings.Contains(stdout, "published components/pattern 1.0") {
		t.Fatalf("publish: exit %d: %s %s", code, stdout, stderr)
	}
	code, _, stderr = mainOrigin("origin", "publish", dir, "--component", "pattern", "--version", "1.0", in)
	if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "version already published") {
		t.Errorf("republish: exit %d, stderr %q; want 2 and one line", code, stderr)
	}
	if code, stdout, stderr := mainOrigin("origin", "refresh", dir); code != 0 || !strings.Contains(stdout, "re-signed timestamp") {
		t.Errorf("refresh: exit %d: %s %s", code, stdout, stderr)
	}
	if code, stdout, stderr := mainOrigin("origin", "status", dir); code != 0 || !strings.Contains(stdout, "bins (4)") || stderr != "" {
		t.Errorf("status: exit %d: %s %s", code, stdout, stderr)
	}
}
