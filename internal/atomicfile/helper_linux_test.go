package atomicfile

import (
	"os/signal"
	"syscall"
)

// limitFileSize makes writes past max bytes fail with EFBIG (instead of
// the SIGXFSZ that would end the process).
func limitFileSize(max uint64) error {
	signal.Ignore(syscall.SIGXFSZ)
	return syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: max, Max: max})
}
