//go:build windows

package atomicfile

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// rename replaces newname with oldname: MoveFileEx replacing an existing
// file, returning only once the move is on disk (Windows has no directory
// fsync to make it durable afterwards).
func rename(oldname, newname string) error {
	from, err := windows.UTF16PtrFromString(longPath(oldname))
	if err == nil {
		var to *uint16
		if to, err = windows.UTF16PtrFromString(longPath(newname)); err == nil {
			err = windows.MoveFileEx(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
		}
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// longPath returns name in the \\?\ form that MoveFileEx needs for paths
// of MAX_PATH and more, as package os does for its own calls.
func longPath(name string) string {
	abs, err := filepath.Abs(name)
	if err != nil || len(abs) < 248 || strings.HasPrefix(abs, `\\?\`) {
		return name
	}
	if unc, ok := strings.CutPrefix(abs, `\\`); ok {
		return `\\?\UNC\` + unc
	}
	return `\\?\` + abs
}

// syncDir does nothing: directories cannot be opened for fsync here, and
// rename writes through.
func syncDir(string) error { return nil }
