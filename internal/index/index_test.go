package index

import (
	"slices"
	"testing"
)

// TestParse: the documented shape decodes; anything else is refused.
func TestParse(t *testing.T) {
	good := `{"category":"components","items":{"pattern":{"version":"2","files":["components/pattern/2/a"],` +
		`"kept":["2","1"],"kept_files":{"2":["components/pattern/2/a"],"1":["components/pattern/1/a"]}}}}`
	idx, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	it := idx.Items["pattern"]
	if f, ok := it.FilesOf("1"); !ok || !slices.Equal(f, []string{"components/pattern/1/a"}) {
		t.Errorf("FilesOf(1) = %v, %v", f, ok)
	}
	if f, ok := it.FilesOf("2"); !ok || !slices.Equal(f, it.Files) {
		t.Errorf("FilesOf(2) = %v, %v", f, ok)
	}
	if _, ok := it.FilesOf("0"); ok {
		t.Error("FilesOf(0): a version not kept resolves")
	}
	for name, bad := range map[string]string{
		"unknownField": `{"category":"components","items":{},"extra":1}`,
		"trailingData": `{"category":"components","items":{}} {}`,
		"noCategory":   `{"items":{}}`,
		"noItems":      `{"category":"components"}`,
		"notJSON":      `components`,
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, bad)
		}
	}
	if Path("programs") != "programs/index.json" || ItemPath("programs", "agent", "5.0", "setup.bin") != "programs/agent/5.0/setup.bin" {
		t.Error("Path or ItemPath changed")
	}
}
