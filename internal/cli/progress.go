package cli

import (
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/cascade-update/cascade/internal/category"
)

// bars shows a progress bar per file transferred (bytes, rate, time
// left), on an interactive terminal only: the endpoint's downloads,
// `cascade mirror`, `cascade origin publish`.
type bars struct {
	p  *mpb.Progress
	mu sync.Mutex
	m  map[string]*mpb.Bar
	n  map[string]int64 // each bar's total
}

// minBarSize is the smallest file that gets a progress bar.
const minBarSize = 1 << 20

// isTerminal reports whether w is an interactive terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newBars(interactive bool) *bars {
	if !interactive {
		return &bars{}
	}
	return &bars{p: mpb.New(mpb.WithOutput(os.Stderr)), m: map[string]*mpb.Bar{}, n: map[string]int64{}}
}

// progress is the endpoint's progress callback (endpoint.Options.Progress).
func (b *bars) progress(cat category.Category, file string, done, total int64) {
	b.file(string(cat)+"/"+file, done, total)
}

// file shows that done of total bytes of the file named key are done;
// a total may grow (a sync's, as it starts new files).
func (b *bars) file(key string, done, total int64) {
	if b.p == nil || total < minBarSize {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bar, ok := b.m[key]
	if !ok {
		bar = b.p.AddBar(total, mpb.PrependDecorators(decor.Name(key, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace),
				decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
				decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), "")))
		b.m[key], b.n[key] = bar, total
	}
	if total != b.n[key] {
		bar.SetTotal(total, false)
		b.n[key] = total
	}
	bar.SetCurrent(done)
}

// wait ends the bars (those not complete are aborted) and waits until
// they are drawn.
func (b *bars) wait() {
	if b.p == nil {
		return
	}
	b.mu.Lock()
	for _, bar := range b.m {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}
