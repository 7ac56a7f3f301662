package repo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/index"
)

// Index returns the published index of a category: what is current, as
// clients see it. It takes no lock.
func (r *Repo) Index(category string) (*index.Index, error) {
	if !r.settings.allowsCategory(category) {
		return nil, fmt.Errorf("read index: category %q is not one of %v", category, r.settings.Kind.Categories())
	}
	t, err := loadTree(r.l)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	tf, err := t.lookup(index.Path(category))
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	if tf == nil {
		return nil, fmt.Errorf("read index: no %s target", index.Path(category))
	}
	data, err := os.ReadFile(r.l.fromRel(targetRel(index.Path(category), tf.Hashes["sha256"])))
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return nil, fmt.Errorf("read index %s: %w", category, err)
	}
	return index.Parse(data)
}

// Custom is the custom metadata of every target: category, name and
// version for item files; category alone for an index; for a delta, those
// of the version it rebuilds and Delta (package internal/index).
type Custom struct {
	Category string       `json:"category"`
	Name     string       `json:"name,omitempty"`
	Version  string       `json:"version,omitempty"`
	Delta    *index.Delta `json:"delta,omitempty"`
}

func (c Custom) raw() *json.RawMessage {
	b, _ := json.Marshal(c) // strings and integers always encode
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
func buildIndex(category string, items map[string][]keptVersion) index.Index {
	idx := index.Index{Category: category, Items: map[string]index.Item{}}
	for name, kept := range items {
		if len(kept) == 0 {
			continue
		}
		newest := kept[0]
		it := index.Item{Version: newest.Version}
		for _, f := range newest.Files {
			it.Files = append(it.Files, index.ItemPath(category, name, newest.Version, f))
		}
		slices.Sort(it.Files)
		it.KeptFiles = map[string][]string{}
		for _, k := range kept {
			it.Kept = append(it.Kept, k.Version)
			var files []string
			for _, f := range k.Files {
				files = append(files, index.ItemPath(category, name, k.Version, f))
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
	hf, err := t.copyTarget(bytes.NewReader(data), dir, index.Name)
	if err != nil {
		return fmt.Errorf("write index of %s: %w", category, err)
	}
	return t.setTarget(index.Path(category), hf.targetFile(Custom{Category: category}))
}

func (hf hashedFile) targetFile(c Custom) *metadata.TargetFiles {
	return &metadata.TargetFiles{
		Length: hf.length,
		Hashes: metadata.Hashes{"sha256": hf.sum},
		Custom: c.raw(),
	}
}
