package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// benchResult is one line of `go test -bench` output: the benchmark's
// name (without the -GOMAXPROCS suffix) and its metrics by unit.
type benchResult struct {
	Name    string
	Metrics map[string]float64
}

// benchResults are the results of one `go test -bench` run, by name.
type benchResults map[string]benchResult

// metric returns a benchmark's metric, or an error naming what is
// missing.
func (r benchResults) metric(name, unit string) (float64, error) {
	b, ok := r[name]
	if !ok {
		return 0, fmt.Errorf("benchmark %s did not run", name)
	}
	v, ok := b.Metrics[unit]
	if !ok {
		return 0, fmt.Errorf("benchmark %s reported no %s", name, unit)
	}
	return v, nil
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads the benchmark lines of `go test -bench` output.
func parseBench(out string) benchResults {
	res := benchResults{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		b := benchResult{Name: procSuffix.ReplaceAllString(f[0], ""), Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.Metrics[f[i+1]] = v
		}
		res[b.Name] = b
	}
	return res
}

// goBench runs `go test -run ^$ -bench pattern -benchtime t pkg` and
// returns its results and the command line.
func goBench(ctx context.Context, s *suite, pkg, pattern, benchtime string) (benchResults, string, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", "1", pkg}
	cmdline := "go " + shellJoin(args)
	out, err := s.run(ctx, exec.CommandContext(ctx, "go", args...))
	if err != nil {
		return nil, cmdline, fmt.Errorf("%s: %w", cmdline, err)
	}
	return parseBench(out), cmdline, nil
}

// shellJoin quotes args for display as a shell command.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " $^*|'\"()[]{}<>;&") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
