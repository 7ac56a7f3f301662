//go:build unix

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// rename replaces newname with oldname atomically (rename(2)).
func rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// syncDir fsyncs dir; file systems that do not support fsync on a
// directory (EINVAL, ENOTSUP) count as done.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}
