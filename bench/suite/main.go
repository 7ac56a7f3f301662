// Command suite runs cascade's benchmarks and writes BENCHMARKS.md: every
// figure with the baseline measured in the same run, the ratio, and the
// command that reproduces it. Usage (from the repository's root):
//
//	go run ./bench/suite                       # every section (about 20 minutes)
//	go run ./bench/suite -only agent,fanout    # some sections; the others are kept
//	go run ./bench/suite -list                 # the sections
//
// Sections that need a tool this machine lacks (nginx and wrk for
// "agent", PostgreSQL for the PostgreSQL figures) say so in the file
// instead of a figure. The machine is shared and noisy: compare the ratios
// within one run, not absolute numbers across runs.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cascade-update/cascade/bench/internal/loadavg"
	"github.com/cascade-update/cascade/internal/atomicfile"
)

// section is one part of BENCHMARKS.md.
type section struct {
	name  string
	title string
	// measure runs the benchmark and returns the section's body
	// (markdown, without the title).
	measure func(ctx context.Context, s *suite) (string, error)
}

// suite is one run of the benchmarks.
type suite struct {
	verbose bool
	log     io.Writer
	quick   bool
}

// run runs cmd, returning its combined output (also copied to the log
// when verbose).
func (s *suite) run(ctx context.Context, cmd *exec.Cmd) (string, error) {
	var buf bytes.Buffer
	var w io.Writer = &buf
	if s.verbose {
		w = io.MultiWriter(&buf, s.log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err := cmd.Run()
	if err != nil {
		tail := buf.String()
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return buf.String(), fmt.Errorf("%w\n%s", err, tail)
	}
	return buf.String(), nil
}

func main() {
	out := flag.String("out", "BENCHMARKS.md", "the file to write")
	only := flag.String("only", "", "comma-separated sections to run (default: all); the file's other sections are kept")
	list := flag.Bool("list", false, "list the sections and exit")
	verbose := flag.Bool("v", false, "copy the benchmarks' output to stderr")
	quick := flag.Bool("quick", false, "smaller runs (a smoke test of the suite, not figures to publish)")
	flag.Parse()
	log.SetFlags(0)
	secs := sections()
	if *list {
		for _, sec := range secs {
			fmt.Printf("%-12s %s\n", sec.name, sec.title)
		}
		return
	}
	selected, err := pick(secs, *only)
	if err != nil {
		log.Fatalf("bench/suite: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &suite{verbose: *verbose, log: os.Stderr, quick: *quick}
	bodies, stamps := map[string]string{}, map[string]string{}
	for _, sec := range selected {
		start := time.Now()
		stamps[sec.name] = machine() // the load before this section ran
		log.Printf("== %s: %s", sec.name, sec.title)
		body, err := sec.measure(ctx, s)
		if ctx.Err() != nil {
			log.Fatalf("bench/suite: interrupted")
		}
		if err != nil {
			log.Printf("   not measured: %v", firstLine(err))
			body = fmt.Sprintf("Not measured in this run: %s\n", firstLine(err))
		}
		bodies[sec.name] = body
		log.Printf("   done in %s", time.Since(start).Round(time.Second))
	}
	if err := write(*out, secs, bodies, stamps, *only != ""); err != nil {
		log.Fatalf("bench/suite: %v", err)
	}
	log.Printf("wrote %s", *out)
}

// pick returns the sections named in only (all when empty).
func pick(secs []section, only string) ([]section, error) {
	if only == "" {
		return secs, nil
	}
	var out []section
	for _, name := range strings.Split(only, ",") {
		i := slices.IndexFunc(secs, func(s section) bool { return s.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("no section %q (-list shows them)", name)
		}
		out = append(out, secs[i])
	}
	return out, nil
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// header opens BENCHMARKS.md.
const header = `# Benchmarks

Written by ` + "`go run ./bench/suite`" + ` (see bench/suite; ` + "`-only NAME`" + ` re-measures one
section and keeps the others). Every figure comes with a baseline measured
in the same run on the same machine, and the ratio between them. The
machine is shared and noisy (2 cores): compare ratios within one run, not
absolute numbers across runs.
`

// machine describes where a section was measured.
func machine() string {
	return fmt.Sprintf("Measured %s, %d CPUs, %s, load average before the run %s.",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version(), loadavg.Read())
}

// write renders the file: with keep, the sections not measured now are
// taken from the existing file, and so are sections written by hand
// between markers of names the suite does not know, each kept after the
// section it followed. stamps are the sections' "Measured" lines
// (machine() now for one missing).
func write(name string, secs []section, bodies, stamps map[string]string, keep bool) error {
	old := map[string]string{}
	after := map[string][]string{} // a known section (or "") -> the unknown ones following it
	if keep {
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if stray := outsideSections(string(b)); stray != "" {
			return fmt.Errorf("%s: text outside the <!-- bench:NAME --> markers would be lost (put it in a section of its own): %.80q", name, stray)
		}
		old = splitSections(string(b))
		prev := ""
		for _, n := range sectionOrder(string(b)) {
			if slices.ContainsFunc(secs, func(s section) bool { return s.name == n }) {
				prev = n
			} else {
				after[prev] = append(after[prev], n)
			}
		}
	}
	var buf strings.Builder
	buf.WriteString(header)
	unknown := func(prev string) {
		for _, n := range after[prev] {
			fmt.Fprintf(&buf, "\n%s\n%s\n%s\n", startMarker(n), old[n], endMarker(n))
		}
	}
	unknown("")
	for _, sec := range secs {
		body, ok := bodies[sec.name]
		if ok {
			stamp, ok := stamps[sec.name]
			if !ok {
				stamp = machine()
			}
			body = fmt.Sprintf("## %s\n\n%s\n\n%s", sec.title, stamp, strings.TrimSpace(body))
		} else if body, ok = old[sec.name]; !ok {
			body = fmt.Sprintf("## %s\n\nNot measured yet: `go run ./bench/suite -only %s`.", sec.title, sec.name)
		}
		fmt.Fprintf(&buf, "\n%s\n%s\n%s\n", startMarker(sec.name), strings.TrimSpace(body), endMarker(sec.name))
		unknown(sec.name)
	}
	return atomicfile.WriteFile(name, []byte(buf.String()), 0o644)
}

func startMarker(name string) string { return "<!-- bench:" + name + " -->" }
func endMarker(name string) string   { return "<!-- /bench:" + name + " -->" }

// eachSection yields the name and the body (trimmed) of each section of a
// file written by write, in order.
func eachSection(doc string) iter.Seq2[string, string] {
	return func(yield func(name, body string) bool) {
		for {
			i := strings.Index(doc, "<!-- bench:")
			if i < 0 {
				return
			}
			doc = doc[i+len("<!-- bench:"):]
			name, rest, ok := strings.Cut(doc, " -->")
			if !ok {
				return
			}
			body, after, ok := strings.Cut(rest, endMarker(name))
			if !ok || !yield(name, strings.TrimSpace(body)) {
				return
			}
			doc = after
		}
	}
}

// outsideSections returns the text of doc, trimmed, that is neither the
// header nor inside a section: write would drop it.
func outsideSections(doc string) string {
	doc = strings.TrimPrefix(doc, header)
	var out strings.Builder
	for {
		i := strings.Index(doc, "<!-- bench:")
		if i < 0 {
			out.WriteString(doc)
			return strings.TrimSpace(out.String())
		}
		out.WriteString(doc[:i])
		name, rest, ok := strings.Cut(doc[i+len("<!-- bench:"):], " -->")
		if !ok {
			out.WriteString(doc[i:])
			return strings.TrimSpace(out.String())
		}
		_, after, ok := strings.Cut(rest, endMarker(name))
		if !ok {
			out.WriteString(doc[i:])
			return strings.TrimSpace(out.String())
		}
		doc = after
	}
}

// sectionOrder returns the names of the sections of a file written by
// write, in order.
func sectionOrder(doc string) []string {
	var names []string
	for name := range eachSection(doc) {
		names = append(names, name)
	}
	return names
}

// splitSections returns the bodies between the markers of a file written
// by write, by section name.
func splitSections(doc string) map[string]string {
	out := map[string]string{}
	for name, body := range eachSection(doc) {
		out[name] = body
	}
	return out
}
