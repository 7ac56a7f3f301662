// Package version parses and orders the version strings of published items
// (components, programs, domain settings), such as "17.735.00", "1.2.3" or
// "1.2.3-hotfix4".
//
// # Syntax
//
// A version is 1 to 64 characters from [0-9A-Za-z] and the separators
// '.', '-', '_' and '+'. It starts and ends with a letter or digit and has
// no two separators in a row. Versions appear in target paths, so nothing
// else is allowed.
//
// # Ordering
//
// A version is split into segments: maximal runs of digits and maximal
// runs of letters; separators only delimit segments and are otherwise
// ignored. Two versions are compared segment by segment, left to right:
//
//   - two digit segments compare as numbers ("10" > "9"; leading zeros are
//     ignored, so "17.735.00" equals "17.735.0");
//   - two letter segments compare as ASCII strings, case-insensitively;
//   - a digit segment is newer than a letter segment;
//   - when one version runs out of segments first, the longer one is newer.
//
// This is RPM's ordering (rpmvercmp) without its '~' and '^' operators.
// There is no notion of a pre-release: anything appended makes a version
// newer, so "1.2.3-hotfix4" > "1.2.3" and "2.0-beta" > "2.0". Versions that
// differ only in separators or letter case ("1.2-a", "1.2.A") compare equal
// and so count as the same version when publishing.
package version

import (
	"fmt"
	"strings"
)

// MaxLen is the longest version string accepted.
const MaxLen = 64

// Version is a parsed version string. The zero Version is invalid; get one
// from Parse.
type Version struct {
	raw      string
	segments []string
}

// Parse checks s against the syntax in the package doc and returns it
// parsed.
func Parse(s string) (Version, error) {
	if err := check(s); err != nil {
		return Version{}, fmt.Errorf("parse version %q: %w", s, err)
	}
	return Version{raw: s, segments: split(s)}, nil
}

// MustParse is Parse for constants known to be valid; it panics otherwise.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the version exactly as it was parsed.
func (v Version) String() string { return v.raw }

// Compare returns -1 if v is older than w, +1 if it is newer, and 0 if the
// two are the same version in the ordering of the package doc.
func (v Version) Compare(w Version) int {
	for i := 0; i < len(v.segments) && i < len(w.segments); i++ {
		if c := compareSegment(v.segments[i], w.segments[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(v.segments) < len(w.segments):
		return -1
	case len(v.segments) > len(w.segments):
		return 1
	}
	return 0
}

// Compare parses a and b and compares them as Version.Compare does.
func Compare(a, b string) (int, error) {
	va, err := Parse(a)
	if err != nil {
		return 0, err
	}
	vb, err := Parse(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isSeparator(c byte) bool { return c == '.' || c == '-' || c == '_' || c == '+' }

func check(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > MaxLen:
		return fmt.Errorf("longer than %d characters", MaxLen)
	case isSeparator(s[0]) || isSeparator(s[len(s)-1]):
		return fmt.Errorf("must start and end with a letter or digit")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c), isLetter(c):
		case isSeparator(c):
			if isSeparator(s[i-1]) {
				return fmt.Errorf("two separators in a row at offset %d", i)
			}
		default:
			return fmt.Errorf("character %q not allowed (want letters, digits and . - _ +)", c)
		}
	}
	return nil
}

// split returns the digit and letter runs of a checked version string.
// Letter runs are lowered so that comparison is case-insensitive.
func split(s string) []string {
	var segs []string
	for i := 0; i < len(s); {
		if isSeparator(s[i]) {
			i++
			continue
		}
		j := i
		digits := isDigit(s[i])
		for j < len(s) && !isSeparator(s[j]) && isDigit(s[j]) == digits {
			j++
		}
		seg := s[i:j]
		if digits {
			seg = strings.TrimLeft(seg, "0")
			if seg == "" {
				seg = "0"
			}
		} else {
			seg = strings.ToLower(seg)
		}
		segs = append(segs, seg)
		i = j
	}
	return segs
}

// compareSegment compares two segments produced by split: digit runs
// without leading zeros, or lowered letter runs.
func compareSegment(a, b string) int {
	da, db := isDigit(a[0]), isDigit(b[0])
	switch {
	case da && !db:
		return 1
	case !da && db:
		return -1
	case da && db && len(a) != len(b):
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
