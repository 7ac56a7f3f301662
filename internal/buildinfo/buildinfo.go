// Package buildinfo says which build of cascade is running: the module
// version, the commit it was built from and when, read from the
// information the Go toolchain embeds in every binary
// (runtime/debug.ReadBuildInfo). `cascade version` prints it and every
// role's /healthz carries it.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Info identifies a build.
type Info struct {
	// Version is the main module's version: a release tag (v1.2.0), a
	// pseudo-version derived from the commit, or "(devel)" when the
	// toolchain knew none.
	Version string `json:"version"`
	// Commit is the VCS revision built; "" when the build did not record
	// one (go run, go test, a tree without .git).
	Commit string `json:"commit,omitempty"`
	// Date is when that commit was made (RFC 3339, UTC), which is the
	// build date of a reproducible build; "" when unknown.
	Date string `json:"date,omitempty"`
	// Modified: the tree had uncommitted changes when it was built.
	Modified bool `json:"modified,omitempty"`
	// Go is the toolchain version.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// version, commit and date may be set at link time (-ldflags "-X
// github.com/cascade-update/cascade/internal/buildinfo.version=v1.2.0",
// as scripts/package does); they take precedence over what the toolchain
// recorded, which lacks the commit when the build ran with
// -buildvcs=false or outside a git checkout.
var version, commit, date string

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: firstOf(version, "unknown"), Commit: commit, Date: date}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, Go: bi.GoVersion}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Date = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		in.Platform = goos + "/" + goarch
	}
	if commit != "" && commit != in.Commit {
		in.Commit, in.Modified = commit, false
	}
	in.Version = firstOf(version, in.Version, "(devel)")
	in.Date = firstOf(date, in.Date)
	return in
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// String is one line: "cascade v1.2.0 (commit 0123456789ab, 2026-03-04T05:06:07Z, go1.26.8 linux/amd64)".
func (in Info) String() string {
	var parts []string
	if in.Commit != "" {
		c := in.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if in.Modified {
			c += "+modified"
		}
		parts = append(parts, "commit "+c)
	}
	if in.Date != "" {
		parts = append(parts, in.Date)
	}
	if in.Go != "" {
		parts = append(parts, strings.TrimSpace(in.Go+" "+in.Platform))
	}
	if len(parts) == 0 {
		return "cascade " + in.Version
	}
	return fmt.Sprintf("cascade %s (%s)", in.Version, strings.Join(parts, ", "))
}
