// Command cascade distributes signed update content from an origin through
// a management server and relaying update agents to every endpoint.
//
// This file is deliberately thin: every subcommand lives in internal/cli.
package main

import (
	"os"

	"github.com/cascade-update/cascade/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
