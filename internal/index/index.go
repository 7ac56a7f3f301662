// Package index is the format of a repository's per-category index: the
// signed target <category>/index.json naming the newest version of every
// item, the versions still served, and the target paths of their files.
// Package repo builds and signs it; clients (trust, update, mirror, agent,
// the server's sync) read it through a verified view and need only this
// package, not the signing code.
//
// Target paths are <category>/<name>/<version>/<file> (ItemPath). The
// index target of a category is <category>/index.json (Path), with custom
// metadata {"category": ...}, rewritten on every publish to the category:
//
//	{
//	  "category": "components",
//	  "items": {
//	    "pattern": {
//	      "version": "17.735.00",
//	      "files": ["components/pattern/17.735.00/lpt.zip"],
//	      "kept": ["17.735.00", "17.734.00"],
//	      "kept_files": {
//	        "17.735.00": ["components/pattern/17.735.00/lpt.zip"],
//	        "17.734.00": ["components/pattern/17.734.00/lpt.zip"]
//	      }
//	    }
//	  }
//	}
//
// version is the newest version of the item, files the target paths of its
// files, kept every version still served, newest first, and kept_files the
// files of each kept version (for endpoints held back to an older version
// by a deployment cap or a program approval). Items are keyed
// by name; encoding/json writes the keys sorted. Parse decodes it and
// repo.Repo.Index reads the published one.
package index

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Name is the basename of each category's index target.
const Name = "index.json"

// Path returns the target path of a category's index.
func Path(category string) string { return category + "/" + Name }

// ItemPath returns the target path of one file of an item version.
func ItemPath(category, name, version, file string) string {
	return category + "/" + name + "/" + version + "/" + file
}

// Index is the content of a category's index target (see the package doc).
type Index struct {
	Category string          `json:"category"`
	Items    map[string]Item `json:"items"`
}

// Parse decodes the content of an index target strictly: unknown
// fields and trailing data are errors.
func Parse(data []byte) (*Index, error) {
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

// Item describes one item of an Index.
type Item struct {
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
func (it Item) FilesOf(v string) ([]string, bool) {
	if v == it.Version {
		return it.Files, true
	}
	f, ok := it.KeptFiles[v]
	return f, ok
}
