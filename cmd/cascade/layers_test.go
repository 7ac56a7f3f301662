package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the import path of this module.
const module = "github.com/cascade-update/cascade/"

// The layers of ARCHITECTURE.md ("Which package may import which").
// Patterns are import paths, relative to the module for its own
// packages; a pattern ending in "/..." matches the package and every
// package below it, any other pattern that package alone.
var (
	// noDatabase are the endpoint side and the formats both sides share:
	// they never depend on the server's persistence (databaseCode), so
	// neither does the endpoint binary's package graph.
	noDatabase = []string{
		"internal/endpoint/...", "internal/update/...", "internal/agent/...",
		"internal/notify", "internal/notify/listen/...", "internal/sitedoc/...", "internal/index/...", "internal/server/api/...",
	}
	// databaseCode are the server's store and the database drivers.
	databaseCode = []string{module + "internal/store/...", "github.com/jackc/pgx/...", "modernc.org/sqlite/..."}

	// serverSide never depends on updateRunner: what the server and the
	// update runner share is a format in its own package
	// (internal/sitedoc, internal/index, internal/notify).
	serverSide   = []string{"internal/server/..."}
	updateRunner = []string{module + "internal/update/..."}

	// signingCode is the code that holds keys and signs metadata.
	signingCode = []string{module + "internal/repo/..."}
	// signerImports are imported directly only by internal/repo:
	// sigstore's signature package is where a TUF signer is made from a
	// private key (go-tuf's metadata package imports it too, for
	// verifying, so only a direct import marks signing code).
	signerImports = []string{"github.com/sigstore/sigstore/pkg/signature/..."}
	// maySignDirectly may import signerImports besides internal/repo: test
	// kits that sign hostile repositories repo would refuse to build
	// (never part of the binary: only tests import them).
	maySignDirectly = []string{module + "internal/testkit/..."}
	// maySign are the only packages that may depend on signingCode, each
	// with its reason.
	maySign = map[string]string{
		"internal/repo/...": "the signing code itself",
		"internal/server":   "signs the site repository",
		"internal/cli":      "cascade origin init, publish and refresh",
		"cmd/cascade":       "the CLI",
		"internal/demo":     "cascade demo builds an origin repository on one machine",
		"internal/testkit/...": "the test kits build the signed repositories their sources " +
			"serve (the hostile source among them)",
		"bench/agent":         "benchmark: publishes the origin it serves",
		"bench/fanout":        "benchmark: publishes the origin of its world",
		"bench/console":       "benchmark: times the console pages of a real server (internal/server)",
		"scripts/screenshots": "runs the demo site (internal/demo) to photograph its console",
	}
)

// pkgInfo is one package of the module as go list reports it.
type pkgInfo struct {
	path    string   // import path without the module prefix
	imports []string // direct imports
	deps    []string // every dependency, transitively (not of tests)
}

// listPackages runs go list over the whole module.
func listPackages(t *testing.T) map[string]pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]pkgInfo{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "|", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[0], module) {
			continue
		}
		p := pkgInfo{path: strings.TrimPrefix(parts[0], module),
			imports: strings.Fields(parts[1]), deps: strings.Fields(parts[2])}
		pkgs[p.path] = p
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// matches reports whether path matches pattern (see the var block).
func matches(path, pattern string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

// matchesAny reports whether path matches one of patterns.
func matchesAny(path string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matches(path, p) })
}

// found returns the patterns matched by an entry of list.
func found(list, patterns []string) []string {
	var out []string
	for _, p := range patterns {
		if slices.ContainsFunc(list, func(d string) bool { return matches(d, p) }) {
			out = append(out, strings.TrimSuffix(p, "/..."))
		}
	}
	return out
}

// TestLayers fails when a package depends on what its layer must not.
func TestLayers(t *testing.T) {
	pkgs := listPackages(t)
	for _, want := range []string{"internal/endpoint", "internal/update", "internal/agent", "internal/server", "internal/repo", "cmd/cascade"} {
		if _, ok := pkgs[want]; !ok {
			t.Fatalf("go list did not report %s (got %d packages)", want, len(pkgs))
		}
	}
	var allowed []string
	for p := range maySign {
		allowed = append(allowed, p)
	}
	for _, p := range pkgs {
		if matchesAny(p.path, noDatabase) {
			if bad := found(p.deps, databaseCode); len(bad) > 0 {
				t.Errorf("%s depends on the server's database code: %s", p.path, strings.Join(bad, ", "))
			}
		}
		if matchesAny(p.path, serverSide) {
			if bad := found(p.deps, updateRunner); len(bad) > 0 {
				t.Errorf("%s depends on the update runner (%s); share a format package instead", p.path, strings.Join(bad, ", "))
			}
		}
		if !matchesAny(p.path, allowed) {
			if bad := found(p.deps, signingCode); len(bad) > 0 {
				t.Errorf("%s depends on the signing code: %s", p.path, strings.Join(bad, ", "))
			}
		}
		if !matchesAny(module+p.path, signingCode) && !matchesAny(module+p.path, maySignDirectly) {
			if bad := found(p.imports, signerImports); len(bad) > 0 {
				t.Errorf("%s imports the signer code directly: %s", p.path, strings.Join(bad, ", "))
			}
		}
	}
}
