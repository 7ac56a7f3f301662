package fetch

import (
	"context"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
)

// TUF returns an adapter that lets go-tuf's Updater download metadata
// through f. go-tuf's fetcher.Fetcher interface has no context, so the
// adapter is bound to ctx: create one per refresh, and do not use it after
// ctx is done.
//
// Errors are those of Bytes. In particular a non-2xx status carries a
// *metadata.ErrDownloadHTTP with the status code (go-tuf stops probing for
// the next root version on a 404 and fails the refresh on any other code),
// and a body longer than maxLength carries a
// *metadata.ErrDownloadLengthMismatch; both chains also carry the failure
// class. Targets should be downloaded with File, which streams to disk,
// rather than through go-tuf's DownloadTarget, which buffers them.
func (f *Fetcher) TUF(ctx context.Context) fetcher.Fetcher {
	return &tufFetcher{ctx: ctx, f: f}
}

type tufFetcher struct {
	ctx context.Context // bound because the interface has no context
	f   *Fetcher
}

// DownloadFile implements fetcher.Fetcher. The timeout argument is
// deprecated in go-tuf and ignored: the fetcher's own bounds apply.
func (t *tufFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	return t.f.Bytes(t.ctx, urlPath, maxLength)
}
