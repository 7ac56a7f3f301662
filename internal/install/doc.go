// Package install installs a category of update content on an endpoint as
// a whole or not at all (docs/update-process.md, Installing), keeps the previous version
// for rollback, and runs the configured hook afterwards.
//
// # Flow
//
// The update run opens a Store on the endpoint's data directory, calls
// Begin with the manifest it resolved from signed metadata, downloads each
// file of Stage.Missing to Stage.PathFor (internal/fetch's File streams to
// PATH.part, resumes it, verifies, fsyncs and renames), calls Commit, and
// then runs the hook with RunHook and Result.HookEnv, acknowledging it with
// Store.HookDone. Files that an installed version already holds are reused
// by Begin and never downloaded again.
//
// # Directory layout
//
//	DIR/lock                      flock(2): one process uses the store at a time
//	DIR/cache/<sha256>            complete download, content-addressed
//	DIR/cache/<sha256>.part       partial download, resumed by the next run
//	DIR/<cat>/versions/<id>/      installed files of one version (immutable)
//	DIR/<cat>/versions/<id>.json  its manifest (Record)
//	DIR/<cat>/current             symlink -> versions/<id>: the installed version
//	DIR/<cat>/previous            symlink -> versions/<id>: kept for rollback
//	DIR/<cat>/staging/<id>/       a version being laid out (removed by Open)
//	DIR/<cat>/switch.json         intent record of a switch in progress
//	DIR/<cat>/hook-pending        id of an installed version whose hook has not run
//
// Consumers (a scanner, for example) read DIR/<cat>/current/<path>.
// Version ids are "v" followed by a generation number. Installed files are
// made read-only (0444); identical files are hard links of one inode.
//
// # Crash safety
//
// The installed version is, by definition, the target of DIR/<cat>/current.
// That symlink is only ever replaced by rename(2) of a new symlink, which is
// atomic, and it only ever names a version directory that is complete and
// fsynced: Commit links or copies every file into staging/<id>, verifies
// each file's length and sha256 there, fsyncs files and directories, moves
// the manifest and then the directory into versions/ (fsyncing the parent),
// and only then switches. The switch is two renames (previous, then
// current) preceded by an fsynced intent record, switch.json. Open replays
// an intent record it finds (the switch is finished, never half done),
// removes staging directories and every version that no link names, and
// keeps the download cache so the next run resumes, except the copies of
// files an installed version holds (a crash right after a switch leaves
// those; Begin links them back from the installed version when needed).
// Small files (manifests, the switch record, the hook marker) are written
// with package atomicfile. A crash at any instant
// therefore leaves current naming either the old or the new version, each
// complete.
package install
