//go:build !linux

package atomicfile

import "errors"

func limitFileSize(uint64) error { return errors.New("not supported here") }
