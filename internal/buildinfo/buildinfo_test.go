package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/cascade-update/cascade", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-03-04T05:06:07Z"}, {Key: "vcs.modified", Value: "true"}}}
	in := fromBuildInfo(bi)
	want := Info{Version: "v1.2.0", Commit: "0123456789abcdef0123", Date: "2026-03-04T05:06:07Z", Modified: true, Go: "go1.26.8", Platform: "linux/arm64"}
	if in != want {
		t.Fatalf("fromBuildInfo = %+v, want %+v", in, want)
	}
	if s := in.String(); s != "cascade v1.2.0 (commit 0123456789ab+modified, 2026-03-04T05:06:07Z, go1.26.8 linux/arm64)" {
		t.Errorf("String = %q", s)
	}
	if s := (Info{Version: "(devel)"}).String(); s != "cascade (devel)" {
		t.Errorf("String = %q", s)
	}

	// Link-time values take precedence; an empty main version is "(devel)".
	version, commit, date = "v9.9.9", "fedcba", "2027-01-01T00:00:00Z"
	defer func() { version, commit, date = "", "", "" }()
	in = fromBuildInfo(bi)
	if in.Version != "v9.9.9" || in.Commit != "fedcba" || in.Modified || in.Date != "2027-01-01T00:00:00Z" {
		t.Errorf("with -X values: %+v", in)
	}
	version, commit, date = "", "", ""
	if in = fromBuildInfo(&debug.BuildInfo{}); in.Version != "(devel)" {
		t.Errorf("no version: %+v", in)
	}
}

func TestRead(t *testing.T) {
	in := Read()
	if in.Version == "" || in.Go != runtime.Version() {
		t.Fatalf("Read = %+v (running %s)", in, runtime.Version())
	}
}
