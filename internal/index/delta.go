package index

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DeltaExt ends the basename of every delta target; no item file may end
// with it.
const DeltaExt = ".cdlt"

// DeltaPath returns the target path of the delta that turns version base
// of an item's file into version version of it:
//
//	<category>/<name>/<version>/<file>.from-<base>.cdlt
//
// A client holding version base of the file looks this one path up in
// the signed metadata: the target exists if and only if the repository
// offers that delta. The index does not list deltas (its strict parser in
// older clients would refuse an unknown field).
func DeltaPath(category, name, version, file, base string) string {
	return ItemPath(category, name, version, file) + ".from-" + base + DeltaExt
}

// Delta is the "delta" member of a delta target's custom metadata: what
// the delta turns into what, so that a client checks its base before
// applying the delta (package internal/delta, which authenticates
// nothing) and the result after.
type Delta struct {
	// File is the basename of the file the delta rebuilds.
	File string `json:"file"`
	// Base is the version of the file the delta applies to.
	Base string `json:"base"`
	// BaseSHA256 and BaseLength describe the base file (hex sha256).
	BaseSHA256 string `json:"base_sha256"`
	BaseLength int64  `json:"base_length"`
	// ResultSHA256 and ResultLength describe the file the delta rebuilds:
	// the same as the signed description of the file's own target.
	ResultSHA256 string `json:"result_sha256"`
	ResultLength int64  `json:"result_length"`
}

// DeltaOf reads the "delta" member of a target's custom metadata. It
// returns nil and no error for a target that is not a delta.
func DeltaOf(custom *json.RawMessage) (*Delta, error) {
	if custom == nil {
		return nil, nil
	}
	var c struct {
		Delta *Delta `json:"delta"`
	}
	if err := json.Unmarshal(*custom, &c); err != nil {
		return nil, fmt.Errorf("decode delta metadata: %w", err)
	}
	if c.Delta == nil {
		return nil, nil
	}
	d := c.Delta
	if d.File == "" || d.Base == "" || len(d.BaseSHA256) != 64 || len(d.ResultSHA256) != 64 ||
		d.BaseLength < 0 || d.ResultLength < 0 {
		return nil, fmt.Errorf("decode delta metadata: incomplete %+v", *d)
	}
	return d, nil
}

// IsDelta reports whether a target path or basename is a delta's.
func IsDelta(p string) bool { return strings.HasSuffix(p, DeltaExt) }
