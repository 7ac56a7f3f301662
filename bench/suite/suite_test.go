package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := `goos: linux
BenchmarkPickLast/hanging/ordered-2         	       3	1620000000 ns/op
BenchmarkPickLast/hanging/sequential-2      	       3	16100000000 ns/op	      1027 seq-s/1023
BenchmarkFile/16MiB/cascade-2   	3	49000000 ns/op	 340.00 MB/s	 2.200 peak-heap-growth-MiB	 1234 B/op	 12 allocs/op
--- FAIL: BenchmarkBroken
PASS
`
	r := parseBench(out)
	if v, err := r.metric("BenchmarkPickLast/hanging/sequential", "seq-s/1023"); err != nil || v != 1027 {
		t.Fatalf("seq-s/1023: %v %v", v, err)
	}
	if v, err := r.metric("BenchmarkFile/16MiB/cascade", "MB/s"); err != nil || v != 340 {
		t.Fatalf("MB/s: %v %v", v, err)
	}
	if v, err := r.metric("BenchmarkFile/16MiB/cascade", "allocs/op"); err != nil || v != 12 {
		t.Fatalf("allocs/op: %v %v", v, err)
	}
	if _, err := r.metric("BenchmarkBroken", "ns/op"); err == nil || !strings.Contains(err.Error(), "did not run") {
		t.Fatalf("missing benchmark: %v", err)
	}
	if _, err := r.metric("BenchmarkPickLast/hanging/ordered", "MB/s"); err == nil {
		t.Fatal("missing metric accepted")
	}
}

// TestWriteKeepsOtherSections: a partial run replaces its sections and
// keeps the others as they were; a section never measured says how to.
func TestWriteKeepsOtherSections(t *testing.T) {
	secs := []section{{name: "a", title: "A"}, {name: "b", title: "B"}, {name: "c", title: "C"}}
	file := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := write(file, secs, map[string]string{"a": "first a", "b": "first b"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := write(file, secs, map[string]string{"b": "second b"}, nil, true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	got := splitSections(doc)
	if !strings.Contains(got["a"], "first a") || !strings.Contains(got["b"], "second b") || strings.Contains(doc, "first b") {
		t.Fatalf("sections: %q", got)
	}
	if !strings.Contains(got["c"], "go run ./bench/suite -only c") {
		t.Fatalf("unmeasured section: %q", got["c"])
	}
	if !strings.HasPrefix(doc, "# Benchmarks") || strings.Index(doc, "## A") > strings.Index(doc, "## B") {
		t.Fatalf("layout:\n%s", doc)
	}
}

func TestPick(t *testing.T) {
	secs := sections()
	if got, err := pick(secs, "agent, plan"); err != nil || len(got) != 2 || got[0].name != "agent" {
		t.Fatalf("pick: %v %v", got, err)
	}
	if _, err := pick(secs, "nope"); err == nil {
		t.Fatal("unknown section accepted")
	}
}

func TestTableAndFormats(t *testing.T) {
	if got := table([]string{"x", "y"}, []string{"1", "2"}); got != "| x | y |\n|---|---|\n| 1 | 2 |\n" {
		t.Fatalf("table: %q", got)
	}
	for _, c := range []struct{ got, want string }{
		{dur(68800), "68.8 µs"}, {dur(1.62e9), "1.62 s"}, {ratio(1, 2), "0.50"}, {ratio(1, 0), "n/a"},
		{ratio(1.62, 1027), "0.0016"}, {bytesSI(71000), "71.0 KB"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestWriteKeepsUnknownSections: a section written by hand between
// markers the suite does not know survives a partial run, in its place.
func TestWriteKeepsUnknownSections(t *testing.T) {
	secs := []section{{name: "a", title: "A"}, {name: "b", title: "B"}}
	file := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	doc := header + "\n<!-- bench:first -->\n## First\n\nby hand 1\n<!-- /bench:first -->\n" +
		"\n<!-- bench:a -->\n## A\n\nold a\n<!-- /bench:a -->\n" +
		"\n<!-- bench:x -->\n## X\n\nby hand 2\n<!-- /bench:x -->\n" +
		"\n<!-- bench:b -->\n## B\n\nold b\n<!-- /bench:b -->\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := write(file, secs, map[string]string{"b": "new b"}, nil, true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := sectionOrder(string(b)); strings.Join(got, ",") != "first,a,x,b" {
		t.Fatalf("sections %v in:\n%s", got, b)
	}
	got := splitSections(string(b))
	if got["first"] != "## First\n\nby hand 1" || got["x"] != "## X\n\nby hand 2" || got["a"] != "## A\n\nold a" ||
		!strings.Contains(got["b"], "new b") {
		t.Fatalf("sections: %q", got)
	}
}

// TestWriteRefusesTextOutsideSections: text after the last section (or
// between two) is not in any section, so write would drop it; it refuses
// and leaves the file as it was.
func TestWriteRefusesTextOutsideSections(t *testing.T) {
	secs := []section{{name: "a", title: "A"}}
	file := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	doc := header + "\n<!-- bench:a -->\n## A\n\nold a\n<!-- /bench:a -->\n\n## Written by hand\n\nfigures\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	err := write(file, secs, map[string]string{"a": "new a"}, nil, true)
	if err == nil || !strings.Contains(err.Error(), "Written by hand") {
		t.Fatalf("write: %v, want a refusal naming the stray text", err)
	}
	if b, _ := os.ReadFile(file); string(b) != doc {
		t.Fatalf("file changed:\n%s", b)
	}
	if got := outsideSections(header + "\n<!-- bench:a -->\nx\n<!-- /bench:a -->\n"); got != "" {
		t.Fatalf("outsideSections of a clean file: %q", got)
	}
}
