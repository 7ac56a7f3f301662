package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/cascade-update/cascade/internal/delta"
	"github.com/klauspost/compress/zstd"
)

// tool is one way of making and applying deltas.
type tool struct {
	name, ext string
	// needs are the programs it runs.
	needs  []string
	create func(base, new, delta string) *exec.Cmd
	apply  func(base, delta, out string, newLen int64) *exec.Cmd
}

// zstdTool is the baseline the ratios are against.
const zstdTool = "zstd -3 --long=27"

// self re-executes this program as a child.
func self(args ...string) *exec.Cmd { return exec.Command(os.Args[0], args...) }

// tools are the contenders, cascade's format first.
func tools() []tool {
	return []tool{
		{
			name: "cascade delta", ext: "cdlt",
			create: func(base, new, d string) *exec.Cmd { return self("create", base, new, d) },
			apply: func(base, d, out string, n int64) *exec.Cmd {
				return self("apply", base, d, out, strconv.FormatInt(n, 10))
			},
		},
		{
			name: zstdTool, ext: "zst", needs: []string{"zstd"},
			create: func(base, new, d string) *exec.Cmd {
				return exec.Command("zstd", "-q", "-f", "-3", "--long=27", "--patch-from="+base, new, "-o", d)
			},
			apply: func(base, d, out string, _ int64) *exec.Cmd {
				return exec.Command("zstd", "-q", "-f", "-d", "--long=31", "--patch-from="+base, d, "-o", out)
			},
		},
		{
			name: "klauspost zstd dict", ext: "kzst",
			create: func(base, new, d string) *exec.Cmd { return self("kzstd-create", base, new, d) },
			apply: func(base, d, out string, _ int64) *exec.Cmd {
				return self("kzstd-apply", base, d, out)
			},
		},
		{
			name: "xdelta3 -9", ext: "vcdiff", needs: []string{"xdelta3"},
			create: func(base, new, d string) *exec.Cmd {
				return exec.Command("xdelta3", "-9", "-e", "-f", "-s", base, new, d)
			},
			apply: func(base, d, out string, _ int64) *exec.Cmd {
				return exec.Command("xdelta3", "-d", "-f", "-s", base, d, out)
			},
		},
		{
			name: "bsdiff", ext: "bsdiff", needs: []string{"bsdiff", "bspatch"},
			create: func(base, new, d string) *exec.Cmd { return exec.Command("bsdiff", base, new, d) },
			apply:  func(base, d, out string, _ int64) *exec.Cmd { return exec.Command("bspatch", base, out, d) },
		},
	}
}

// missingTools lists the programs of tools() not installed.
func missingTools() []string {
	var missing []string
	for _, t := range tools() {
		for _, bin := range t.needs {
			if _, err := exec.LookPath(bin); err != nil {
				missing = append(missing, bin)
			}
		}
	}
	return missing
}

// children are the operations this program runs in child processes, so
// that each has its own peak RSS.
var children = map[string]func(args []string) error{
	"create":       createChild,
	"apply":        applyChild,
	"kzstd-create": kzstdCreate,
	"kzstd-apply":  kzstdApply,
}

// childArgs checks a child's arguments against its usage (its name,
// then one word per argument: "create BASE NEW DELTA") and reads the
// files of the first read arguments whole; a child that streams a file
// opens it itself.
func childArgs(args []string, usage string, read int) ([][]byte, error) {
	if len(args) != len(strings.Fields(usage))-1 {
		return nil, errors.New("usage: " + usage)
	}
	files := make([][]byte, read)
	for i := range files {
		b, err := os.ReadFile(args[i])
		if err != nil {
			return nil, err
		}
		files[i] = b
	}
	return files, nil
}

// createChild: create BASE NEW DELTA.
func createChild(args []string) error {
	files, err := childArgs(args, "create BASE NEW DELTA", 2)
	if err != nil {
		return err
	}
	return writeFile(args[2], func(w io.Writer) error { return delta.Create(w, files[0], files[1]) })
}

// applyChild: apply BASE DELTA OUT NEWLEN, streaming as an endpoint would.
func applyChild(args []string) error {
	if _, err := childArgs(args, "apply BASE DELTA OUT NEWLEN", 0); err != nil {
		return err
	}
	n, err := strconv.ParseInt(args[3], 10, 64)
	if err != nil {
		return err
	}
	base, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer base.Close()
	d, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer d.Close()
	return writeFile(args[2], func(w io.Writer) error { return delta.Apply(base, d, w, n) })
}

// kzstdCreate: klauspost's zstd encoder with the base as a raw dictionary
// and a window covering base and new, at its best compression.
func kzstdCreate(args []string) error {
	files, err := childArgs(args, "kzstd-create BASE NEW DELTA", 2)
	if err != nil {
		return err
	}
	base, target := files[0], files[1]
	window := zstd.MinWindowSize
	for window < len(base)+len(target) {
		window <<= 1
	}
	if window > zstd.MaxWindowSize {
		return fmt.Errorf("base and new (%d bytes) exceed zstd's largest window", len(base)+len(target))
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(window), zstd.WithEncoderDictRaw(0, base), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	defer enc.Close()
	return os.WriteFile(args[2], enc.EncodeAll(target, nil), 0o644)
}

// kzstdApply decodes with the base as the raw dictionary, streaming the
// output.
func kzstdApply(args []string) error {
	files, err := childArgs(args, "kzstd-apply BASE DELTA OUT", 1)
	if err != nil {
		return err
	}
	base := files[0]
	d, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer d.Close()
	dec, err := zstd.NewReader(bufio.NewReader(d), zstd.WithDecoderDictRaw(0, base),
		zstd.WithDecoderMaxWindow(zstd.MaxWindowSize), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer dec.Close()
	return writeFile(args[2], func(w io.Writer) error { _, err := io.Copy(w, dec); return err })
}

// writeFile writes name through a buffer with fill.
func writeFile(name string, fill func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
