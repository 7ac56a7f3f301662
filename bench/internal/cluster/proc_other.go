//go:build !unix

package cluster

import (
	"os/exec"
	"syscall"
)

// ownGroup does nothing where there are no process groups (Windows).
func ownGroup(*exec.Cmd) {}

// signalGroup ends cmd's process: Windows has no signals to send, only
// termination.
func signalGroup(cmd *exec.Cmd, _ syscall.Signal) {
	cmd.Process.Kill() //nolint:errcheck // already gone
}
