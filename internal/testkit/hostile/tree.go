package hostile

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/testkit"
)

// metaRole returns the role a metadata request names: "timestamp" for
// <kind>/metadata/timestamp.json, ROLE for <kind>/metadata/N.ROLE.json.
func metaRole(urlPath string) (string, bool) {
	dir, base := path.Split(urlPath)
	if !strings.HasSuffix(dir, "/metadata/") {
		return "", false
	}
	if base == "timestamp.json" {
		return "timestamp", true
	}
	_, role, ok := splitVersioned(base)
	return role, ok
}

// splitVersioned splits "N.ROLE.json" into N and ROLE.
func splitVersioned(base string) (int64, string, bool) {
	stem, ok := strings.CutSuffix(base, ".json")
	if !ok {
		return 0, "", false
	}
	num, role, ok := strings.Cut(stem, ".")
	if !ok || role == "" {
		return 0, "", false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 {
		return 0, "", false
	}
	return n, role, true
}

// newestMeta returns the name, relative to root, of the newest version of
// role in the metadata directory metaDir (relative to root), or "".
func newestMeta(root *os.Root, metaDir, role string) string {
	f, err := root.Open(metaDir)
	if err != nil {
		return ""
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return ""
	}
	var best int64
	for _, name := range names {
		if n, r, ok := splitVersioned(name); ok && r == role && n > best {
			best = n
		}
	}
	if best == 0 {
		return ""
	}
	return path.Join(metaDir, fmt.Sprintf("%d.%s.json", best, role))
}

// RefreshedCopy copies the repository directory repoDir (made by
// repo.Init, keys included) to dst and refreshes the copy as of the time
// at (repo.Repo.Refresh): the copy's timestamp is re-signed with a newer
// version that expires one timestamp period after at. With at in the past
// the copy is a validly signed tree whose timestamp has expired (for
// Expired); with at in the future, a tree that is current at that time.
// repoDir is not changed. It returns the copy's source tree (dst/published),
// the directory to serve.
func RefreshedCopy(ctx context.Context, repoDir, dst string, at time.Time) (string, error) {
	if err := testkit.CopyTree(repoDir, dst); err != nil {
		return "", fmt.Errorf("refreshed copy: %w", err)
	}
	r, err := repo.Open(dst, repo.Options{Now: func() time.Time { return at }})
	if err != nil {
		return "", fmt.Errorf("refreshed copy: %w", err)
	}
	if _, err := r.Refresh(ctx, at); err != nil {
		return "", fmt.Errorf("refreshed copy: %w", err)
	}
	return filepath.Join(dst, "published"), nil
}
