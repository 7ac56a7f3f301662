// Command screenshots regenerates the web console's screenshots
// (docs/console.md, Screenshots):
//
//	go run ./scripts/screenshots [-out docs/images] [-doc docs/console.md]
//
// run from the repository's root. It runs the demo site in a temporary
// directory, exactly as `cascade demo` does (internal/demo: a real origin,
// server, two update agents and their clients, one round of updates and a
// failover), signs in to the server's console with headless Chromium (the
// browser tests' setup, internal/testkit/browser) and saves one PNG per
// console page at a fixed 1280x800 viewport as console-NAME.png (a
// paletted PNG of the page's 256 most frequent colours, to keep the
// repository small). A page
// this build does not serve (404) is skipped with a note, so the script
// keeps working as pages are added. Last it rewrites the part of the
// document between the screenshot markers to show the pictures saved.
//
// Reruns change little: the demo's content is fixed, only times, ports
// and identifiers differ.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/demo"
	"github.com/cascade-update/cascade/internal/server/api"
	chromium "github.com/cascade-update/cascade/internal/testkit/browser"
)

// Viewport of every screenshot.
const width, height = 1280, 800

// Markers of the generated part of the document.
const (
	beginMark = "<!-- screenshots: written by `go run ./scripts/screenshots`; do not edit by hand -->"
	endMark   = "<!-- end of screenshots -->"
)

func main() {
	out := flag.String("out", filepath.Join("docs", "images"), "directory of the PNG files")
	doc := flag.String("doc", filepath.Join("docs", "console.md"), "document whose screenshot section is rewritten (\"\" for none)")
	flag.Parse()
	if err := run(*out, *doc); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

// shot is one console page to photograph.
type shot struct {
	name, title string
	// path returns the page's path (after the server URL's /), "" to skip
	// the page with the note of the error.
	path func(ctx context.Context, s *session) (string, error)
	// act, when set, fills in and submits the page's form before the
	// screenshot.
	act func(s *session) chromedp.Action[chromedp.Void]
}

func fixed(p string) func(context.Context, *session) (string, error) {
	return func(context.Context, *session) (string, error) { return p, nil }
}

var shots = []shot{
	{name: "dashboard", title: "Dashboard", path: fixed("")},
	{name: "endpoints", title: "Endpoints", path: fixed("endpoints")},
	{name: "endpoint", title: "An endpoint's page", path: endpointPage},
	{name: "agents", title: "Agents", path: fixed("agents")},
	{name: "content", title: "Content", path: fixed("content")},
	{name: "enrollment", title: "Enrollment", path: fixed("enrollment")},
	{name: "audit", title: "Audit log", path: fixed("audit")},
	{name: "sources", title: "Update sources", path: fixed("sources")},
	{name: "preview", title: "Preview of an edited list", path: fixed("sources/preview"), act: previewForm},
	{name: "whatif", title: "What-if with an update agent down", path: fixed("sources/whatif"), act: whatIfForm},
}

// session is the signed-in browser on the demo site.
type session struct {
	ctx   context.Context
	site  demo.Site
	admin *api.Client
}

func run(outDir, doc string) error {
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run from the repository's root (go run ./scripts/screenshots)")
	}
	path, err := chromium.Path()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("make %s: %w", outDir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan demo.Site, 1)
	done := make(chan error, 1)
	fmt.Println("starting the demo site (about half a minute)...")
	go func() {
		done <- demo.Run(ctx, demo.Options{Stay: true, Ready: func(s demo.Site) { ready <- s }})
	}()
	var site demo.Site
	select {
	case site = <-ready:
	case err := <-done:
		return fmt.Errorf("the demo site did not start: %w", err)
	case <-time.After(5 * time.Minute):
		return errors.New("the demo site did not start within 5 minutes")
	}
	saved, err := photograph(path, site, outDir)
	cancel()
	if derr := <-done; derr != nil && !errors.Is(derr, demo.ErrInterrupted) && err == nil {
		err = fmt.Errorf("the demo site: %w", derr)
	}
	if err != nil {
		return err
	}
	if doc != "" {
		if err := rewriteDoc(doc, outDir, saved); err != nil {
			return err
		}
		fmt.Printf("rewrote the screenshots of %s\n", doc)
	}
	return nil
}

// photograph signs in and saves every page's screenshot; it returns the
// shots saved.
func photograph(path string, site demo.Site, outDir string) ([]shot, error) {
	profile, err := os.MkdirTemp("", "cascade-screenshots-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	bctx, stop, err := chromium.Start(chromium.Options{Path: path, UserDataDir: profile, Width: width, Height: height})
	if err != nil {
		return nil, err
	}
	defer stop()
	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute)
	defer cancel()
	admin, err := api.NewClient(api.ClientOptions{URL: site.ServerURL, Token: site.AdminToken, Fingerprint: site.Fingerprint})
	if err != nil {
		return nil, err
	}
	s := &session{ctx: ctx, site: site, admin: admin}
	settle(ctx, admin)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height),
		chromium.SignIn(site.ServerURL, site.ConsoleUser, site.ConsolePassword), chromedp.WaitVisible(chromedp.CSS("#whoami"))); err != nil {
		return nil, fmt.Errorf("sign in to the console: %w", err)
	}
	var saved []shot
	for _, sh := range shots {
		p, err := sh.path(ctx, s)
		if err != nil {
			fmt.Printf("skipped %-10s %v\n", sh.name, err)
			continue
		}
		res, err := chromedp.Run(ctx, chromedp.NavigateResponse(site.ServerURL+p))
		if err != nil {
			return saved, fmt.Errorf("open /%s: %w", p, err)
		}
		if res.Status == http.StatusNotFound {
			fmt.Printf("skipped %-10s /%s: this build has no such page\n", sh.name, p)
			continue
		}
		if res.Status != http.StatusOK {
			return saved, fmt.Errorf("open /%s: status %d", p, res.Status)
		}
		steps := []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.CSS("main"))}
		if sh.act != nil {
			steps = append(steps, sh.act(s))
		}
		if err := chromedp.Do(ctx, steps...); err != nil {
			return saved, fmt.Errorf("%s (/%s): %w", sh.name, p, err)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			return saved, fmt.Errorf("screenshot of /%s: %w", p, err)
		}
		if png, err = shrink(png); err != nil {
			return saved, fmt.Errorf("screenshot of /%s: %w", p, err)
		}
		file := filepath.Join(outDir, "console-"+sh.name+".png")
		if err := atomicfile.WriteFile(file, png, 0o644); err != nil {
			return saved, err
		}
		fmt.Printf("saved   %-10s /%s -> %s (%d KiB)\n", sh.name, p, file, len(png)>>10)
		saved = append(saved, sh)
	}
	return saved, nil
}

// settle waits, for at most 20 seconds, until the endpoints' last
// reports stop changing: the demo's endpoints send their reports of the
// last round in the background.
func settle(ctx context.Context, admin *api.Client) {
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		var now json.RawMessage
		if err := admin.Call(ctx, http.MethodGet, "/api/v1/reports/last", nil, nil, &now); err != nil {
			return
		}
		if string(now) == last {
			return
		}
		last = string(now)
	}
}

// endpointPage is the page of the demo's first Berlin client,
// /endpoints/ID.
func endpointPage(ctx context.Context, s *session) (string, error) {
	var list struct {
		Endpoints []api.Endpoint `json:"endpoints"`
	}
	if err := s.admin.Call(ctx, http.MethodGet, "/api/v1/endpoints", nil, nil, &list); err != nil {
		return "", fmt.Errorf("list the endpoints: %w", err)
	}
	for _, e := range list.Endpoints {
		if e.Hostname == "client-berlin-1" {
			return "endpoints/" + e.ID, nil
		}
	}
	return "", errors.New("the demo has no endpoint client-berlin-1")
}

// editedDraft is the policy in force with the Berlin office sent to the
// Paris agent.
func editedDraft(s *session) (string, error) {
	var p api.Policy
	if err := s.admin.Call(s.ctx, http.MethodGet, "/api/v1/policy", nil, nil, &p); err != nil {
		return "", fmt.Errorf("read the policy: %w", err)
	}
	const berlin, paris = `source: "agent:ua-berlin-1"`, `source: "agent:ua-paris-1"`
	if !strings.Contains(p.Document, berlin) {
		return "", fmt.Errorf("the demo's policy has no entry %s", berlin)
	}
	return strings.Replace(p.Document, berlin, paris, 1), nil
}

// previewForm previews a Berlin client, an address in Paris and the
// site's addresses (127.0.0.0/16, in groups with one plan each) under the
// edited draft.
func previewForm(s *session) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		draft, err := editedDraft(s)
		if err != nil {
			return err
		}
		return submit(ctx, "#run-preview", "#preview-result",
			chromedp.SetValue(chromedp.CSS("#policy"), draft),
			chromedp.SendKeys(chromedp.CSS("#endpoints"), "client-berlin-1"),
			chromedp.SendKeys(chromedp.CSS("#addresses"), "127.0.20.50"),
			chromedp.SendKeys(chromedp.CSS("#ranges"), "127.0.0.0/16"))
	})
}

// whatIfForm marks the Berlin agent down.
func whatIfForm(*session) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		return submit(ctx, "#run-whatif", "#whatif-result",
			chromedp.Click(chromedp.CSS(`#choices input[value="agent:ua-berlin-1"]`)))
	})
}

// submit runs fill, clicks button, waits for the next page to load and
// checks that it shows result.
func submit(ctx context.Context, button, result string, fill ...chromedp.Action[chromedp.Void]) error {
	if err := chromedp.Do(ctx, fill...); err != nil {
		return err
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(button))); err != nil {
		return err
	}
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, result)))
	if err != nil {
		return err
	}
	if !ok {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
		return fmt.Errorf("after %s the page shows no %s: %.300s", button, result, text)
	}
	return nil
}

// rewriteDoc replaces the part of doc between the markers with the
// screenshots saved, linked relative to doc.
func rewriteDoc(doc, outDir string, saved []shot) error {
	data, err := os.ReadFile(doc)
	if err != nil {
		return fmt.Errorf("read %s: %w", doc, err)
	}
	text := string(data)
	i, j := strings.Index(text, beginMark), strings.Index(text, endMark)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no screenshot markers (%q ... %q)", doc, beginMark, endMark)
	}
	rel, err := filepath.Rel(filepath.Dir(doc), outDir)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(beginMark + "\n")
	for _, sh := range saved {
		fmt.Fprintf(&b, "\n**%s**\n\n![%s](%s)\n", sh.title, sh.title, filepath.ToSlash(filepath.Join(rel, "console-"+sh.name+".png")))
	}
	b.WriteString("\n")
	return atomicfile.WriteFile(doc, []byte(text[:i]+b.String()+text[j:]), 0o644)
}
