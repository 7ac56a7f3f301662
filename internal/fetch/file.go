package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/failure"
)

// Want is what File must produce: the length and sha256 of the target as
// signed in the metadata.
type Want struct {
	// Length is the exact length of the target in bytes.
	Length int64
	// SHA256 is the target's 32-byte sha256 digest.
	SHA256 []byte
	// Progress, if set, is called from File's goroutine with the number of
	// bytes of the target held so far (resumed bytes included) after every
	// write, for progress bars. It must be quick.
	Progress func(done int64)
}

// copyBufSize is the size of the buffer File streams through: memory use
// is flat in the target size.
const copyBufSize = 256 << 10

// errRangeRefused means the source answered 416 to a resumed request.
var errRangeRefused = errors.New("range not satisfiable")

// File downloads rawURL to dst, never holding the target in memory: it
// streams into dst+".part" while hashing, enforces want.Length exactly
// (more bytes: failure.Verification and the partial file is deleted;
// fewer: an error, and the partial file is kept to be resumed), checks
// want.SHA256 (a mismatch deletes the partial file: failure.Verification),
// fsyncs and renames to dst. dst's directory must exist.
//
// Resume: if dst+".part" exists, its bytes are hashed and the download
// continues with a Range request. A 206 continues the file; a 200 (the
// source ignores ranges) restarts it from the first byte; a 416 discards
// the partial file and retries once from the start. Targets are
// content-addressed and the final hash covers every byte, so a partial
// file left by another source is safe to continue. A partial file that is
// already complete and correct is renamed without any request.
func (f *Fetcher) File(ctx context.Context, rawURL, dst string, want Want) error {
	op := "download " + rawURL
	if want.Length < 0 || len(want.SHA256) != sha256.Size {
		return failure.Newf(failure.Local, op, "invalid expectation: length %d, %d-byte sha256", want.Length, len(want.SHA256))
	}
	p, err := openPart(dst+".part", want.Length)
	if err != nil {
		return failure.New(failure.Local, op, err)
	}
	defer func() { p.close() }() // p may be replaced below
	for attempt := 0; ; attempt++ {
		if p.n < want.Length {
			err = f.download(ctx, op, rawURL, p, want)
			if errors.Is(err, errRangeRefused) && attempt == 0 {
				f.log.Debug("fetch: range refused, restarting", "op", op, "offset", p.n)
				if err = p.reset(); err != nil {
					return failure.New(failure.Local, op, err)
				}
				continue
			}
			if err != nil {
				return err
			}
		}
		if !bytes.Equal(p.h.Sum(nil), want.SHA256) {
			sum := p.h.Sum(nil)
			p.remove()
			if attempt == 0 && p.resumed {
				// The partial file was complete but wrong: download afresh.
				f.log.Debug("fetch: partial file corrupt, restarting", "op", op)
				if p, err = openPart(dst+".part", want.Length); err != nil {
					return failure.New(failure.Local, op, err)
				}
				continue
			}
			return failure.Newf(failure.Verification, op, "sha256 %x, want %x", sum, want.SHA256)
		}
		if err := p.commit(dst); err != nil {
			return failure.New(failure.Local, op, err)
		}
		return nil
	}
}

// download requests the rest of the target and appends it to p.
func (f *Fetcher) download(ctx context.Context, op, rawURL string, p *partFile, want Want) error {
	hdr := http.Header{}
	if p.n > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", p.n))
	}
	x, err := f.send(ctx, op, rawURL, hdr, f.fileTimeout)
	if err != nil {
		return err
	}
	defer x.close()
	if err := x.checkFileStatus(p, want.Length); err != nil {
		return err
	}
	if want.Progress != nil {
		want.Progress(p.n)
	}
	return x.copyTo(p, want)
}

// checkFileStatus accepts a 200 (restarting p) or a 206 that continues p.
func (x *exchange) checkFileStatus(p *partFile, length int64) error {
	cl := x.resp.ContentLength
	switch code := x.resp.StatusCode; {
	case code == http.StatusOK:
		if cl >= 0 && cl != length {
			return lengthError(x.op, "declared length %d of %s, want %d", cl, x.url, length)
		}
		if p.n > 0 {
			x.f.log.Debug("fetch: source ignored the range, restarting", "op", x.op)
			if err := p.reset(); err != nil {
				return failure.New(failure.Local, x.op, err)
			}
		}
		return nil
	case code == http.StatusPartialContent && p.n > 0:
		start, _, total, err := parseContentRange(x.resp.Header.Get("Content-Range"))
		if err != nil || start != p.n {
			return failure.Newf(failure.HTTPError, x.op, "206 with Content-Range %q for a request from byte %d",
				x.resp.Header.Get("Content-Range"), p.n)
		}
		if total >= 0 && total != length {
			return lengthError(x.op, "Content-Range total %d of %s, want %d", total, x.url, length)
		}
		if cl > length-p.n {
			return lengthError(x.op, "declared length %d of %s from byte %d, want %d", cl, x.url, p.n, length-p.n)
		}
		return nil
	case code == http.StatusRequestedRangeNotSatisfiable && p.n > 0:
		return failure.New(failure.HTTPError, x.op, errRangeRefused)
	default:
		return x.statusError()
	}
}

// copyTo streams the body into p. It reads at most one byte more than the
// target needs, to detect a longer body.
func (x *exchange) copyTo(p *partFile, want Want) error {
	buf := make([]byte, copyBufSize)
	body := io.LimitReader(x.body, want.Length-p.n+1)
	for {
		k, rerr := body.Read(buf)
		if k > 0 {
			if p.n+int64(k) > want.Length {
				p.remove()
				return lengthError(x.op, "%s is longer than %d bytes", x.url, want.Length)
			}
			if err := p.write(buf[:k]); err != nil {
				return failure.New(failure.Local, x.op, err)
			}
			if want.Progress != nil {
				want.Progress(p.n)
			}
		}
		switch {
		case rerr == io.EOF && p.n < want.Length:
			return failure.New(failure.Verification, x.op, fmt.Errorf("%s ended after %d of %d bytes", x.url, p.n, want.Length))
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return x.fail(rerr, true)
		}
	}
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*",
// returned as -1).
func parseContentRange(s string) (start, end, total int64, err error) {
	bad := fmt.Errorf("malformed Content-Range %q", s)
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	a, b, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return 0, 0, 0, bad
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	total = -1
	var err3 error
	if tot != "*" {
		total, err3 = strconv.ParseInt(tot, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || (total >= 0 && end >= total) {
		return 0, 0, 0, bad
	}
	return start, end, total, nil
}

// partFile is dst+".part" opened for appending, with the running hash and
// length of what it holds.
type partFile struct {
	path    string
	f       *os.File
	h       hash.Hash
	n       int64
	resumed bool // it held bytes when opened
}

// openPart opens (creating if needed) the partial file at path and hashes
// what it holds. A partial file longer than length is emptied.
func openPart(path string, length int64) (*partFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open partial file: %w", err)
	}
	p := &partFile{path: path, f: f, h: sha256.New()}
	n, err := io.CopyBuffer(p.h, io.LimitReader(f, length+1), make([]byte, copyBufSize))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("hash partial file: %w", err)
	}
	p.n = n
	if n > length {
		if err := p.reset(); err != nil {
			f.Close()
			return nil, err
		}
	}
	p.resumed = p.n > 0
	return p, nil
}

func (p *partFile) write(b []byte) error {
	if _, err := p.f.Write(b); err != nil {
		return fmt.Errorf("write partial file: %w", err)
	}
	p.h.Write(b)
	p.n += int64(len(b))
	return nil
}

// reset empties the partial file.
func (p *partFile) reset() error {
	if err := p.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate partial file: %w", err)
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind partial file: %w", err)
	}
	p.h.Reset()
	p.n = 0
	p.resumed = false
	return nil
}

// remove deletes the partial file; its content cannot become the target.
func (p *partFile) remove() {
	p.f.Close()
	os.Remove(p.path)
}

// close closes the file if it is still open. A partial file with bytes in
// it is left for a resume; an empty one is removed.
func (p *partFile) close() {
	if p.f.Close() == nil && p.n == 0 {
		os.Remove(p.path)
	}
}

// commit makes the verified partial file the target: fsync, rename, and
// fsync the directory so the rename survives a crash.
func (p *partFile) commit(dst string) error {
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("sync partial file: %w", err)
	}
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("close partial file: %w", err)
	}
	if err := atomicfile.Rename(p.path, dst); err != nil {
		return fmt.Errorf("rename partial file: %w", err)
	}
	return nil
}
