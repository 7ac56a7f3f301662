package cli

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/buildinfo"
)

func TestVersionCommand(t *testing.T) {
	out := mustRun(t, "version")
	if !strings.HasPrefix(out, "cascade ") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
		t.Errorf("version: %q", out)
	}
	var in buildinfo.Info
	if err := json.Unmarshal([]byte(mustRun(t, "version", "--json")), &in); err != nil || in.Version == "" || in.Go != runtime.Version() {
		t.Errorf("version --json: %+v %v", in, err)
	}
	if code, _, _ := run("version", "extra"); code != ExitUsage {
		t.Errorf("version extra: exit %d", code)
	}
}
