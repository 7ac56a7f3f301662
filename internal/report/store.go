package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// Store keeps the last reports of an endpoint as JSON files in a directory,
// one file per run, named so that lexical order is run order.
type Store struct {
	dir  string
	keep int
}

// MaxReportSize caps a stored report read back from disk.
const MaxReportSize = 16 << 20

// OpenStore returns a store in dir keeping the last keep reports (at
// least 1).
func OpenStore(dir string, keep int) (*Store, error) {
	if keep < 1 {
		keep = 1
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open report store: %w", err)
	}
	return &Store{dir: dir, keep: keep}, nil
}

func (s *Store) name(r *Report) string {
	return fmt.Sprintf("%s-%s.json", r.Started.UTC().Format("20060102T150405.000000000Z"), r.ID)
}

// Save writes r atomically and durably and removes the oldest reports beyond keep.
func (s *Store) Save(r *Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("save report: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, s.name(r)), data, 0o600); err != nil {
		return fmt.Errorf("save report: %w", err)
	}
	names, err := s.names()
	if err != nil {
		return err
	}
	for len(names) > s.keep {
		if err := os.Remove(filepath.Join(s.dir, names[0])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("prune reports: %w", err)
		}
		names = names[1:]
	}
	return nil
}

func (s *Store) names() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// List returns the kept reports, oldest first.
func (s *Store) List() ([]*Report, error) {
	names, err := s.names()
	if err != nil {
		return nil, err
	}
	out := make([]*Report, 0, len(names))
	for _, n := range names {
		r, err := s.read(n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Last returns the newest report, or nil if there is none.
func (s *Store) Last() (*Report, error) {
	names, err := s.names()
	if err != nil || len(names) == 0 {
		return nil, err
	}
	return s.read(names[len(names)-1])
}

func (s *Store) read(name string) (*Report, error) {
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	defer f.Close()
	var r Report
	dec := json.NewDecoder(&limited{f: f, n: MaxReportSize})
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("read report %s: %w", name, err)
	}
	return &r, nil
}

type limited struct {
	f *os.File
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("report too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}
