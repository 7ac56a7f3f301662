//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// cascadeBin is the cascade binary TestMain builds for the whole suite.
var cascadeBin string

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

// runMain builds cascade into a temporary directory, runs the tests and
// removes the binary.
func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cascade-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	cascadeBin = filepath.Join(dir, "cascade")
	build := exec.Command("go", "build", "-o", cascadeBin, "github.com/cascade-update/cascade/cmd/cascade")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build cascade: %v\n", err)
		return 1
	}
	return m.Run()
}
