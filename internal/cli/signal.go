package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func signalNotify(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}
