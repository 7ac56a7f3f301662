package trust

import (
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// MaxRoleNameLen bounds a delegated role's name: with its version it
// becomes a file name (N.<role>.json) in mirrors.
const MaxRoleNameLen = 128

// CheckRoleName refuses a delegated role name (a roles[].name of a
// delegation, or a succinct hash bin: the signed name prefix, "-" and
// hex digits) that could not safely name the file N.<role>.json in a
// metadata directory: empty or longer than MaxRoleNameLen, a character
// other than ASCII letters, digits, '.', '_' and '-' (no separator, no
// control character), not starting with a letter or digit, containing
// "..", or a top-level role's name (whose versioned files it would
// replace). Names come from signed metadata, but whoever holds a
// delegating key is not trusted with the file system of every mirror, so
// they are checked before they name a URL or a file (package trust and
// package mirror).
func CheckRoleName(name string) error {
	if name == "" || len(name) > MaxRoleNameLen {
		return fmt.Errorf("invalid role name %q: want 1 to %d characters", name, MaxRoleNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if i == 0 && !alnum {
			return fmt.Errorf("invalid role name %q: must start with a letter or digit", name)
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("invalid role name %q: character %q not allowed (want letters, digits and . _ -)", name, c)
		}
		if c == '.' && i+1 < len(name) && name[i+1] == '.' {
			return fmt.Errorf("invalid role name %q: contains \"..\"", name)
		}
	}
	switch name {
	case metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return fmt.Errorf("invalid role name %q: the name of a top-level role", name)
	}
	return nil
}
