//go:build !unix && !windows

package atomicfile

import "os"

// rename replaces newname with oldname.
func rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// syncDir does nothing: directories cannot be fsynced here.
func syncDir(string) error { return nil }
