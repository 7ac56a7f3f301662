// Package browser starts the headless Chromium that the console's browser
// tests (internal/server) and the screenshots script (scripts/screenshots)
// drive through github.com/chromedp/chromedp, with one set of flags, and
// signs in to the console through its form.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/chromedp/chromedp"
)

// DefaultPath is Debian's chromium (.ci/run installs it).
const DefaultPath = "/usr/bin/chromium"

// Path returns the Chromium to run: $CASCADE_CHROMIUM, else DefaultPath,
// or an error saying how to get one.
func Path() (string, error) {
	path := DefaultPath
	if p := os.Getenv("CASCADE_CHROMIUM"); p != "" {
		path = p
	}
	if _, err := exec.LookPath(path); err != nil {
		return "", fmt.Errorf("chromium is not at %s (apt-get install chromium, or set CASCADE_CHROMIUM): %w", path, err)
	}
	return path, nil
}

// Options configure Start.
type Options struct {
	// Path is the Chromium binary (default: Path()).
	Path string
	// UserDataDir is the browser profile's directory: give a new empty
	// one, so that nothing of an earlier run is used.
	UserDataDir string
	// Width and Height are the window's size (default 1280x900).
	Width, Height int
}

// Start starts a headless Chromium and returns the chromedp context of
// its first tab and the function that stops it. The console's
// certificate is self-signed (the CLI pins its fingerprint; a browser
// cannot), so certificate errors are ignored.
func Start(o Options) (context.Context, context.CancelFunc, error) {
	if o.Path == "" {
		var err error
		if o.Path, err = Path(); err != nil {
			return nil, nil, err
		}
	}
	if o.UserDataDir == "" {
		return nil, nil, fmt.Errorf("start chromium: no profile directory given")
	}
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = 1280, 900
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(o.Path), chromedp.UserDataDir(o.UserDataDir),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(o.Width, o.Height),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	stop := func() { cancelB(); cancelA() }
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("start chromium: %w", err)
	}
	return ctx, stop, nil
}

// SignIn signs in to the console at base (ending in /) as name through
// the sign-in form, and waits for the next page (signed in, or the form
// again with its error).
func SignIn(base, name, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"signin"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#whoami, #error")),
	)
}
