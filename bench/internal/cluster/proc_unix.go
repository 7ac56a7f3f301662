//go:build unix

package cluster

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own, so that a signal
// reaches the server and whatever it started; on Linux the server is also
// killed when the benchmark dies (procAttr).
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = procAttr() }

// signalGroup sends sig to cmd's process group (an ended one is ignored).
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	syscall.Kill(-cmd.Process.Pid, sig) //nolint:errcheck // already gone
}
