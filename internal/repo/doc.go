// Package repo builds and maintains signed TUF repositories: the vendor
// repository that the origin publishes (components, programs) and the site
// repository that the management server signs (domain settings, the
// update-source policy, program approvals). Both are built by the same
// code; Kind selects which.
//
// Metadata follows the TUF specification as implemented by
// github.com/theupdateframework/go-tuf/v2, whose updater is the reference
// client for this format: ed25519 keys, sha256 hashes only, consistent
// snapshots, and hash-bin delegation from the top-level targets role in
// the succinct form of TAP 15 (delegated roles "bins-000" ... "bins-3ff";
// a target lives in the bin given by the leading bits of the sha256 of its
// path). Publishing re-signs only the bins that change, plus the top-level
// targets when it is within its margin of expiry. The timestamp records
// the snapshot's version, length and sha256; the snapshot records each
// targets role's version and length (clients use it as a size cap).
//
// # Directory layout
//
//	DIR/repo.json          settings (Settings), written by Init
//	DIR/state.json         private catalog of kept versions and pending deletions
//	DIR/lock               lock file: one writer at a time
//	DIR/keys/              private keys, 0700; root.pem, targets.pem,
//	                       snapshot.pem, timestamp.pem, bins.pem (0600)
//	DIR/published/<kind>/metadata/1.root.json         root history
//	DIR/published/<kind>/metadata/timestamp.json      the only mutable file
//	DIR/published/<kind>/metadata/N.snapshot.json, N.targets.json, N.bins-xxx.json
//	DIR/published/<kind>/targets/<dir>/<sha256>.<basename>
//
// where kind is "vendor" or "site". DIR/published is what a static HTTP
// server serves. Only Init needs the root key: after Init, keys/root.pem can
// be moved offline; publish and refresh use the online keys.
//
// # Targets and categories
//
// Items are published as target paths <category>/<name>/<version>/<file>
// with custom metadata {"category": ..., "name": ..., "version": ...}.
// The categories a repository accepts are fixed by its kind: components
// and programs for the vendor repository; domain_settings and programs
// (the server's approvals) for the site repository. Versions are ordered
// as package internal/version documents, and each publish of an item must
// be newer than every version of it published before.
//
// Each category has a signed index target <category>/index.json (custom
// metadata {"category": ...}), rewritten on every publish to the category;
// its format is package internal/index's, which clients import without
// this package's keys and signing code. Repo.Index reads the published
// one.
//
// # Retention
//
// The last Keep versions of each item (Settings.Keep, or Item.Keep for one
// publish) are kept; older ones are removed from the bins and, after a
// grace period, from disk.
//
// # Atomicity
//
// A publish or refresh writes every new file first (targets, then the new
// immutable versioned metadata), fsyncs them and their directories, and
// replaces timestamp.json last by renaming a temporary file over it. A
// reader therefore sees the old complete state or the new one. If anything
// fails before the rename, the files written so far are removed and the
// published tree is as it was. Files that a new state no longer references
// (old metadata versions, pruned targets, old indexes) are deleted only once
// Settings.GCGenerations newer timestamps exist and Settings.GCGrace has
// passed, so readers part-way through an older state are not broken.
//
// Expiry: Refresh re-signs the timestamp on every call and any other role
// within its Settings.Margin of expiry (the root only when keys/root.pem
// is present). The timestamp expires in a day by default, so run refresh
// at least daily; Status reports what is near expiry.
//
// Writers take an exclusive lock on DIR/lock, so two publishers (processes
// or goroutines) never interleave. Readers need no lock.
package repo
