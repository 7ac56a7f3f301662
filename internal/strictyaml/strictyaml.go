// Package strictyaml decodes configuration files strictly (unknown fields
// are errors) and reports what is wrong in the file's terms: one line per
// problem, the YAML line it is on, the field names of the file rather
// than Go type names, and a "did you mean" for a mistyped field.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cascade-update/cascade/internal/suggest"
)

// Error lists every problem of a document, one line each. Its Error form
// is the first problem and how many more there are, so that a caller that
// prints one line prints a clear one.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	switch n := len(e.Problems); n {
	case 0:
		return "invalid document"
	case 1:
		return e.Problems[0]
	case 2:
		return e.Problems[0] + " (and 1 more problem)"
	default:
		return fmt.Sprintf("%s (and %d more problems)", e.Problems[0], n-1)
	}
}

// ProblemLines returns every problem, one line each.
func (e *Error) ProblemLines() []string { return e.Problems }

// ErrEmpty is returned by Decode for a document without content.
var ErrEmpty = errors.New("the document is empty")

// Decode decodes the single YAML document data into v (a pointer),
// refusing unknown fields. A decoding error is an *Error listing every
// problem yaml found, each in the file's terms (Problems).
func Decode(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return ErrEmpty
		}
		return &Error{Problems: Problems(err, v)}
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &Error{Problems: []string{"the file must hold a single YAML document"}}
	}
	return nil
}

var (
	unknownField = regexp.MustCompile(`^(line \d+: )field (.+) not found in type (.+)$`)
	cannot       = regexp.MustCompile("^(line \\d+: )cannot unmarshal (!!\\w+)( `.*`)? into (.+)$")
)

// Problems turns an error of decoding into target (a value or pointer of
// the type decoded into, with unknown fields refused) into one line per
// problem: `line 3: unknown field "servee" (did you mean "serve"?)`,
// "line 5: want a duration such as 30s, got the string `5 min`".
func Problems(err error, target any) []string {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	types := map[string]reflect.Type{}
	if target != nil {
		collectTypes(reflect.TypeOf(target), types)
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if g := unknownField.FindStringSubmatch(m); g != nil {
			m = fmt.Sprintf("%sunknown field %q", g[1], g[2])
			if t, ok := types[g[3]]; ok {
				if near := suggest.Nearest(g[2], fieldNames(t)); near != "" {
					m += fmt.Sprintf(" (did you mean %q?)", near)
				}
			}
		} else if g := cannot.FindStringSubmatch(m); g != nil {
			want := "another type"
			if t, ok := types[g[4]]; ok {
				want = describe(t)
			}
			m = fmt.Sprintf("%swant %s, got %s%s", g[1], want, tagName(g[2]), g[3])
		}
		out = append(out, strings.ReplaceAll(m, "\n", " "))
	}
	return out
}

// collectTypes records t and every type reachable from its fields by the
// name yaml.v3 prints for it.
func collectTypes(t reflect.Type, seen map[string]reflect.Type) {
	if _, ok := seen[t.String()]; ok {
		return
	}
	seen[t.String()] = t
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		collectTypes(t.Elem(), seen)
	case reflect.Map:
		collectTypes(t.Key(), seen)
		collectTypes(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				collectTypes(f.Type, seen)
			}
		}
	}
}

// fieldNames are the YAML names of struct type t's fields.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
	}
	return names
}

// describe says what a YAML value of Go type t looks like.
func describe(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration such as 30s or 5m"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}

// tagName names a YAML tag as a person would.
func tagName(tag string) string {
	switch tag {
	case "!!str":
		return "the string"
	case "!!int":
		return "the number"
	case "!!float":
		return "the number"
	case "!!bool":
		return "the boolean"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!null":
		return "null"
	}
	return tag
}
