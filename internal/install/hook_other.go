//go:build !unix

package install

import "os/exec"

// setProcessGroup keeps exec's default: a timeout kills the hook process.
func setProcessGroup(*exec.Cmd) {}
