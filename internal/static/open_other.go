//go:build !unix

package static

// openFlags: no special open flag outside Unix.
const openFlags = 0
