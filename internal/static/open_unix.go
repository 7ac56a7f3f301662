//go:build unix

package static

import "syscall"

// openFlags makes opening a FIFO planted in the tree return at once (it is
// then refused as not a regular file) instead of blocking the request.
// O_NONBLOCK has no effect on reading regular files.
const openFlags = syscall.O_NONBLOCK
