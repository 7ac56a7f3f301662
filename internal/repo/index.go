package repo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// IndexName is the basename of each category's index target.
const IndexName = "index.json"

// IndexPath returns the target path of a category's index.
func IndexPath(category string) string { return category + "/" + IndexName }

// ItemPath returns the target path of one file of an item version.
func ItemPath(category, name, version, file string) string {
	return category + "/" + name + "/" + version + "/" + file
}

// Index is the content of a category's index target (see the package doc).
type Index struct {
	Category string               `json:"category"`
	Items    map[string]IndexItem `json:"items"`
}

// ParseIndex decodes the content of an index target strictly: unknown
// fields and trailing data are errors.
func ParseIndex(data []byte) (*Index, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var idx Index
	if err := dec.Decode(&idx); err != nil {
		return nil, fmt.Errorf("parse index: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parse index: trailing data")
	}
	if idx.Category == "" || idx.Items == nil {
		return nil, fmt.Errorf("parse index: no category or items")
	}
	return &idx, nil
}

// Index returns the published index of a category: what is current, as
// clients see it. It takes no lock.
func (r *Repo) Index(category string) (*Index, error) {
	if !r.settings.allowsCategory(category) {
		return nil, fmt.Errorf("read index: category %q is not one of %v", category, r.settings.Kind.Categories())
	}
	t, err := loadTree(r.l)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	tf, err := t.lookup(IndexPath(category))
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	if tf == nil {
		return nil, fmt.Errorf("read index: no %s target", IndexPath(category))
	}
	data, err := os.ReadFile(r.l.fromRel(targetRel(IndexPath(category), tf.Hashes["sha256"])))
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return nil, fmt.Errorf("read index %s: %w", category, err)
	}
	return ParseIndex(data)
}

// IndexItem describes one item of an Index.
type IndexItem struct {
	// Version is the newest version.
	Version string `json:"version"`
	// Files are the target paths of the newest version's files, sorted.
	Files []string `json:"files"`
	// Kept lists every version still published, newest first.
	Kept []string `json:"kept"`
	// KeptFiles maps every kept version to the target paths of its files,
	// sorted, so that an endpoint held back to an older version (a
	// deployment cap, a program approval) can resolve it.
	KeptFiles map[string][]string `json:"kept_files,omitempty"`
}

// FilesOf returns the target paths of version v of the item, or false if
// v is not kept.
func (it IndexItem) FilesOf(v string) ([]string, bool) {
	if v == it.Version {
		return it.Files, true
	}
	f, ok := it.KeptFiles[v]
	return f, ok
}

// Custom is the custom metadata of every target: category, name and
// version for item files; category alone for an index.
type Custom struct {
	Category string `json:"category"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
}

func (c Custom) raw() *json.RawMessage {
	b, _ := json.Marshal(c) // a struct of strings always encodes
	m := json.RawMessage(b)
	return &m
}

// decodeCustom reads the custom metadata of a target.
func decodeCustom(tf *metadata.TargetFiles) (Custom, error) {
	var c Custom
	if tf.Custom == nil {
		return c, fmt.Errorf("no custom metadata")
	}
	if err := json.Unmarshal(*tf.Custom, &c); err != nil {
		return c, fmt.Errorf("decode custom metadata: %w", err)
	}
	return c, nil
}

// buildIndex renders the index of a category from the catalog.
func buildIndex(category string, items map[string][]keptVersion) Index {
	idx := Index{Category: category, Items: map[string]IndexItem{}}
	for name, kept := range items {
		if len(kept) == 0 {
			continue
		}
		newest := kept[0]
		it := IndexItem{Version: newest.Version}
		for _, f := range newest.Files {
			it.Files = append(it.Files, ItemPath(category, name, newest.Version, f))
		}
		slices.Sort(it.Files)
		it.KeptFiles = map[string][]string{}
		for _, k := range kept {
			it.Kept = append(it.Kept, k.Version)
			var files []string
			for _, f := range k.Files {
				files = append(files, ItemPath(category, name, k.Version, f))
			}
			slices.Sort(files)
			it.KeptFiles[k.Version] = files
		}
		idx.Items[name] = it
	}
	return idx
}

// writeIndex writes the index of a category as a content-addressed target
// and sets it in its bin.
func (t *tree) writeIndex(category string, items map[string][]keptVersion) error {
	data, err := json.Marshal(buildIndex(category, items))
	if err != nil {
		return fmt.Errorf("encode index of %s: %w", category, err)
	}
	dir := filepath.Join(t.l.targetsDir(), category)
	if err := ensureDir(dir); err != nil {
		return fmt.Errorf("write index of %s: %w", category, err)
	}
	hf, err := t.copyTarget(bytes.NewReader(data), dir, IndexName)
	if err != nil {
		return fmt.Errorf("write index of %s: %w", category, err)
	}
	return t.setTarget(IndexPath(category), hf.targetFile(Custom{Category: category}))
}

func (hf hashedFile) targetFile(c Custom) *metadata.TargetFiles {
	return &metadata.TargetFiles{
		Length: hf.length,
		Hashes: metadata.Hashes{"sha256": hf.sum},
		Custom: c.raw(),
	}
}
