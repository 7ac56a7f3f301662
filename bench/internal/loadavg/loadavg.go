// Package loadavg reads the machine's load average, which the benchmark
// programs record beside their figures: the machine is shared.
package loadavg

import (
	"os"
	"strings"
)

// Read returns the 1, 5 and 15 minute load averages as the kernel prints
// them ("0.52 1.10 1.53"), or "?" where /proc/loadavg cannot be read.
func Read() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
