package main

import (
	"context"
	"fmt"
	"strings"
)

// deltaFigures are bench/delta's -json output.
type deltaFigures struct {
	CPUs   int               `json:"cpus"`
	Inputs map[string]string `json:"inputs"`
	Rows   []deltaRow        `json:"rows"`
}

type deltaRow struct {
	Input      string  `json:"input"`
	Tool       string  `json:"tool"`
	BaseBytes  int64   `json:"base_bytes"`
	NewBytes   int64   `json:"new_bytes"`
	DeltaBytes int64   `json:"delta_bytes"`
	CreateSec  float64 `json:"create_s"`
	CreateMiB  float64 `json:"create_peak_rss_mib"`
	ApplySec   float64 `json:"apply_s"`
	ApplyMiB   float64 `json:"apply_peak_rss_mib"`
	Error      string  `json:"error,omitempty"`
}

// deltaBaseline is the tool the ratios are against (bench/delta's zstdTool).
const deltaBaseline = "zstd -3 --long=27"

func measureDelta(ctx context.Context, s *suite) (string, error) {
	var args []string
	if s.quick {
		args = []string{"-sizes", "4", "-program=false"}
	}
	var f deltaFigures
	cmd, err := runJSON(ctx, s, "delta", &f, args...)
	if err != nil {
		return "", err
	}
	return deltaBody(cmd, f), nil
}

// deltaBody renders the section: per input, every tool with its size
// ratio against the zstd tool of the same run.
func deltaBody(cmd string, f deltaFigures) string {
	var b strings.Builder
	b.WriteString("cascade's delta format (`internal/delta`, docs/deltas.md) against the zstd tool with `--patch-from`, " +
		"xdelta3 and bsdiff (Debian's packages) and klauspost/compress's zstd with the base as a raw dictionary, on the same " +
		"inputs in the same run. Each create and apply runs in its own process; memory is its peak RSS (rusage), time its " +
		"wall clock; every applied result is compared with the new file. Targets (issue 16): the delta no larger than the zstd " +
		"tool's on the pattern files and within 1.5x of it on the program; applying 64 MiB in under 0.5 s; memory while " +
		"applying flat in the file size.\n\n")
	b.WriteString(code(cmd))
	var inputs []string
	for _, r := range f.Rows {
		if len(inputs) == 0 || inputs[len(inputs)-1] != r.Input {
			inputs = append(inputs, r.Input)
		}
	}
	mib := func(v float64) string { return fmt.Sprintf("%.1f MiB", v) }
	for _, in := range inputs {
		var base *deltaRow
		var rows [][]string
		for i, r := range f.Rows {
			if r.Input == in && r.Tool == deltaBaseline && r.Error == "" {
				base = &f.Rows[i]
			}
		}
		for _, r := range f.Rows {
			if r.Input != in {
				continue
			}
			if r.Error != "" {
				rows = append(rows, []string{r.Tool, r.Error, "", "", "", "", ""})
				continue
			}
			rat := "n/a"
			if base != nil {
				rat = ratio(float64(r.DeltaBytes), float64(base.DeltaBytes))
			}
			rows = append(rows, []string{r.Tool, bytesSI(float64(r.DeltaBytes)), rat,
				fmt.Sprintf("%.2f s", r.CreateSec), mib(r.CreateMiB), fmt.Sprintf("%.3f s", r.ApplySec), mib(r.ApplyMiB)})
		}
		var first deltaRow
		for _, r := range f.Rows {
			if r.Input == in {
				first = r
				break
			}
		}
		fmt.Fprintf(&b, "\n**%s**: %s; base %s, new %s.\n\n", in, f.Inputs[in], bytesSI(float64(first.BaseBytes)), bytesSI(float64(first.NewBytes)))
		b.WriteString(table([]string{"tool", "delta", "size vs zstd tool", "create", "create peak RSS", "apply", "apply peak RSS"}, rows...))
	}
	return b.String()
}
