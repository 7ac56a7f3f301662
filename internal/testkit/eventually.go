package testkit

import (
	"testing"
	"time"
)

// Poll calls cond until it returns true or timeout has passed, and
// reports whether it did. It waits 1 ms after the first failed call,
// doubling up to 50 ms, so that a condition that holds soon is seen soon
// and a long wait does not spin. Poll is for goroutines that must not
// call t.Fatal; tests use Eventually.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
	return true
}

// Eventually polls cond (as Poll does) until it holds, and fails the test
// with "timed out after TIMEOUT waiting for WHAT" if timeout passes
// first. Timeouts bound a hang, they are not a measurement: pick one that
// a slow machine never reaches.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
