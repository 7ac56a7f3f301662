package strictyaml

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type doc struct {
	Name  string `yaml:"name"`
	Serve struct {
		Listen       string `yaml:"listen"`
		MaxDownloads int    `yaml:"max_downloads"`
	} `yaml:"serve"`
	Interval time.Duration     `yaml:"interval"`
	Enabled  bool              `yaml:"enabled"`
	Items    []item            `yaml:"items"`
	Labels   map[string]string `yaml:"labels"`
}

type item struct {
	Addresses string `yaml:"addresses"`
}

func TestDecodeProblems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"two unknown fields, each on its line", "nmae: a\nlabels: {}\nbogus: 1\n",
			[]string{`line 1: unknown field "nmae" (did you mean "name"?)`, `line 3: unknown field "bogus"`}},
		{"nested struct", "serve:\n  listn: x\n  max_downloads: many\n",
			[]string{`line 2: unknown field "listn" (did you mean "listen"?)`, "line 3: want a whole number, got the string `many`"}},
		{"list element", "items:\n  - {adresses: 10.0.0.0/8}\n",
			[]string{`line 2: unknown field "adresses" (did you mean "addresses"?)`}},
		{"types", "interval: 5 min\nenabled: sometimes\nitems: 3\nserve: [a]\n",
			[]string{"line 1: want a duration such as 30s or 5m, got the string `5 min`", "line 2: want true or false, got the string `sometimes`",
				"line 3: want a list, got the number `3`", "line 4: want a mapping, got a list"}},
		{"duplicate key", "name: a\nname: b\n", []string{`line 2: mapping key "name" already defined at line 1`}},
		{"syntax", "name: [a\n", []string{"line 1: did not find expected ',' or ']'"}},
		{"two documents", "name: a\n---\nname: b\n", []string{"the file must hold a single YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(tc.yaml), &d)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode = %v, want an *Error", err)
			}
			if !reflect.DeepEqual(e.Problems, tc.want) {
				t.Fatalf("problems\n got %q\nwant %q", e.Problems, tc.want)
			}
			for _, p := range e.Problems {
				if strings.Contains(p, "strictyaml.") || strings.Contains(p, "\n") {
					t.Errorf("problem %q names a Go type or spans lines", p)
				}
			}
		})
	}
	var d doc
	if err := Decode([]byte("  \n"), &d); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	if err := Decode([]byte("name: a\nserve: {listen: ':80'}\n"), &d); err != nil || d.Serve.Listen != ":80" {
		t.Errorf("valid: %v %+v", err, d)
	}
}

func TestErrorLine(t *testing.T) {
	for n, want := range map[int]string{1: "a", 2: "a (and 1 more problem)", 3: "a (and 2 more problems)"} {
		if got := (&Error{Problems: []string{"a", "b", "c"}[:n]}).Error(); got != want {
			t.Errorf("%d problems: %q, want %q", n, got, want)
		}
	}
}
