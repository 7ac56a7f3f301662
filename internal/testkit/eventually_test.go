package testkit

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestEventuallyHolds(t *testing.T) {
	n := 0
	r := &recorder{TB: t}
	Eventually(r, time.Minute, "three calls", func() bool { n++; return n == 3 })
	if r.fatal != "" || n != 3 {
		t.Fatalf("after %d calls: %q", n, r.fatal)
	}
}

func TestEventuallyTimesOut(t *testing.T) {
	r := &recorder{TB: t}
	Eventually(r, 10*time.Millisecond, "the impossible", func() bool { return false })
	if !strings.Contains(r.fatal, "waiting for the impossible") {
		t.Fatalf("failure %q does not say what it waited for", r.fatal)
	}
}
