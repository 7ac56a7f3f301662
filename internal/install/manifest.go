package install

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
)

// Limits on a manifest. Manifests come from the network (signed, but
// still parsed defensively), so every dimension is capped.
const (
	// MaxFiles is the largest number of files in one version.
	MaxFiles = 100_000
	// MaxItems is the largest number of items in one version.
	MaxItems = 10_000
	// MaxPathLen is the longest relative install path, in bytes.
	MaxPathLen = 1024
	// MaxComponentLen is the longest component of a path, in bytes.
	MaxComponentLen = 255
	// MaxDepth is the largest number of components of a path.
	MaxDepth = 32
	// MaxNameLen is the longest item name or version, in bytes.
	MaxNameLen = 255
)

// ErrInvalidManifest is wrapped by every error that rejects a manifest.
// Such errors carry failure.Verification: the signed content cannot be
// installed on this endpoint.
var ErrInvalidManifest = errors.New("invalid manifest")

// Manifest describes one version of a category, exactly as the caller
// resolved it from signed metadata.
type Manifest struct {
	Category category.Category `json:"category"`
	// Items are the named, versioned things in this version of the
	// category (a pattern, an engine, a program build).
	Items []Item `json:"items"`
	// Files are every file of the version. Begin sorts them by path.
	Files []File `json:"files"`
}

// Item is one named, versioned piece of a category.
type Item struct {
	// Name: at most MaxNameLen bytes of printable UTF-8 without white
	// space, '/' or '='.
	Name string `json:"name"`
	// Version: at most MaxNameLen bytes of printable UTF-8 without white
	// space.
	Version string `json:"version"`
}

// File is one file of a version.
type File struct {
	// Path is the relative install path, slash-separated: no leading
	// slash, no empty, "." or ".." component, no backslash, NUL or control
	// character, valid UTF-8, within MaxPathLen, MaxComponentLen and
	// MaxDepth, unique ignoring case, and not also a directory of another
	// file.
	Path string `json:"path"`
	// Length is the exact length in bytes.
	Length int64 `json:"length"`
	// SHA256 is the lowercase hex sha256 of the content.
	SHA256 string `json:"sha256"`
}

// Record is what the store keeps about an installed version, in
// versions/<id>.json.
type Record struct {
	ID          string    `json:"id"`
	InstalledAt time.Time `json:"installed_at"`
	Manifest
}

// Version is an installed version of a category.
type Version struct {
	Record
	// Dir is the absolute path of the version's directory, which holds
	// exactly the manifest's files.
	Dir string
}

// invalid returns an ErrInvalidManifest error for op.
func invalid(op, format string, args ...any) error {
	return failure.New(failure.Verification, op,
		fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, args...)))
}

// normalize validates m and returns a copy with lowercase hashes, files
// sorted by path and items sorted by name, so that equal versions compare
// equal.
func normalize(cat category.Category, m Manifest) (Manifest, error) {
	const op = "validate manifest"
	if m.Category != cat {
		return Manifest{}, invalid(op, "manifest is for category %q, not %q", m.Category, cat)
	}
	if len(m.Items) > MaxItems || len(m.Files) > MaxFiles {
		return Manifest{}, invalid(op, "%d items and %d files exceed the limits (%d, %d)",
			len(m.Items), len(m.Files), MaxItems, MaxFiles)
	}
	out := Manifest{Category: cat, Items: slices.Clone(m.Items), Files: slices.Clone(m.Files)}
	if err := checkItems(out.Items); err != nil {
		return Manifest{}, failure.New(failure.Verification, op, err)
	}
	for i := range out.Files {
		f := &out.Files[i]
		f.SHA256 = strings.ToLower(f.SHA256)
		if err := checkFile(*f); err != nil {
			return Manifest{}, failure.New(failure.Verification, op, err)
		}
	}
	if err := checkCollisions(out.Files); err != nil {
		return Manifest{}, failure.New(failure.Verification, op, err)
	}
	slices.SortFunc(out.Items, func(a, b Item) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(out.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// checkItems validates item names and versions and rejects duplicates.
func checkItems(items []Item) error {
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if err := checkWord(it.Name, "/="); err != nil {
			return fmt.Errorf("%w: item name %q: %v", ErrInvalidManifest, it.Name, err)
		}
		if err := checkWord(it.Version, ""); err != nil {
			return fmt.Errorf("%w: version %q of item %q: %v", ErrInvalidManifest, it.Version, it.Name, err)
		}
		if seen[it.Name] {
			return fmt.Errorf("%w: item %q listed twice", ErrInvalidManifest, it.Name)
		}
		seen[it.Name] = true
	}
	return nil
}

// checkWord validates an item name or version: these appear in the hook's
// environment as space-separated name=version pairs.
func checkWord(s, forbidden string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > MaxNameLen:
		return fmt.Errorf("longer than %d bytes", MaxNameLen)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) || strings.ContainsRune(forbidden, r) {
			return fmt.Errorf("contains %q", r)
		}
	}
	return nil
}

// checkFile validates one file entry.
func checkFile(f File) error {
	if err := CheckPath(f.Path); err != nil {
		return err
	}
	if f.Length < 0 {
		return fmt.Errorf("%w: %s: negative length %d", ErrInvalidManifest, f.Path, f.Length)
	}
	if !isHexDigest(f.SHA256) {
		return fmt.Errorf("%w: %s: sha256 %q is not 64 hex digits", ErrInvalidManifest, f.Path, f.SHA256)
	}
	return nil
}

// isHexDigest reports whether s is 64 lowercase hex digits.
func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckPath validates a relative install path (see File.Path). The error
// wraps ErrInvalidManifest and says what is wrong.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: path %q: %s", ErrInvalidManifest, p, why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPathLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathLen))
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return bad("absolute")
	case strings.ContainsRune(p, '\\'):
		return bad("contains a backslash")
	}
	for _, r := range p {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return bad(fmt.Sprintf("contains control character %q", r))
		}
	}
	parts := strings.Split(p, "/")
	if len(parts) > MaxDepth {
		return bad(fmt.Sprintf("deeper than %d components", MaxDepth))
	}
	for _, c := range parts {
		switch {
		case c == "":
			return bad("empty component")
		case c == "." || c == "..":
			return bad(fmt.Sprintf("%q component", c))
		case len(c) > MaxComponentLen:
			return bad(fmt.Sprintf("component longer than %d bytes", MaxComponentLen))
		}
	}
	return nil
}

// checkCollisions rejects two files whose paths are equal ignoring case
// (they would collide on a case-insensitive file system) and a file whose
// path is also a directory of another file.
func checkCollisions(files []File) error {
	seen := make(map[string]string, len(files))
	dirs := make(map[string]string)
	for _, f := range files {
		key := strings.ToLower(f.Path)
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("%w: paths %q and %q collide (duplicate ignoring case)", ErrInvalidManifest, prev, f.Path)
		}
		seen[key] = f.Path
		for i := range len(key) {
			if key[i] == '/' {
				dirs[key[:i]] = f.Path
			}
		}
	}
	for _, f := range files {
		if dir, ok := dirs[strings.ToLower(f.Path)]; ok {
			return fmt.Errorf("%w: %q is a file but also a directory of %q", ErrInvalidManifest, f.Path, dir)
		}
	}
	return nil
}

// equalManifests reports whether two normalized manifests are the same.
func equalManifests(a, b Manifest) bool {
	return a.Category == b.Category && slices.Equal(a.Items, b.Items) && slices.Equal(a.Files, b.Files)
}

// itemList formats items as "name=version" pairs separated by spaces.
func itemList(items []Item) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(it.Name + "=" + it.Version)
	}
	return b.String()
}
