package update

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/sitedoc"
	"github.com/cascade-update/cascade/internal/version"
)

// maxSiteDoc caps a site document read from the install store.
const maxSiteDoc = 4 << 20

// siteDoc decodes an installed domain_settings document; ok is false when
// it is not installed.
func (ru *run) siteDoc(item, file string, into any) (ok bool, err error) {
	v, err := ru.r.o.Install.Current(category.DomainSettings)
	if err != nil {
		return false, nil
	}
	p := filepath.Join(v.Dir, item, file)
	fi, err := os.Stat(p)
	if err != nil {
		return false, nil
	}
	if fi.Size() > maxSiteDoc {
		return false, fmt.Errorf("read %s/%s: larger than %d bytes", item, file, maxSiteDoc)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return false, fmt.Errorf("read %s/%s: %w", item, file, err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", item, file, err)
	}
	return true, nil
}

// choices says, for the category being updated, which item versions to
// install: nil means every item at its newest version.
func (ru *run) choices(cat category.Category) (pick map[string]string, caps map[string]string, err error) {
	switch cat {
	case category.Components:
		var d sitedoc.Deployment
		if _, err := ru.siteDoc(sitedoc.DeploymentItem, sitedoc.DeploymentFile, &d); err != nil {
			return nil, nil, err
		}
		return nil, deployedCaps(d.Components, ru.req.Announced), nil
	case category.Programs:
		var s sitedoc.DomainSettings
		if _, err := ru.siteDoc(sitedoc.DomainItem(ru.r.o.Domain), sitedoc.SettingsFile, &s); err != nil {
			return nil, nil, err
		}
		if s.Programs == nil {
			s.Programs = map[string]string{}
		}
		return s.Programs, nil, nil
	}
	return nil, nil, nil
}

// deployedCaps are the caps a components update applies: those of the
// installed deployment document, except for the components a
// notify-components run announces, which are capped at the announced
// version. The announcement is the deployment the server has just signed
// (a hold released, another version deployed, a rollback), received from
// the server itself over its pinned, mutually authenticated connection,
// while the endpoint's copy of the signed document may predate it: a
// notify-components run updates components only (docs/update-process.md, Triggers).
// It can only choose among versions the vendor signed, and the next run
// that updates the domain settings applies the signed document again.
func deployedCaps(installed, announced map[string]string) map[string]string {
	if len(announced) == 0 {
		return installed
	}
	caps := maps.Clone(installed)
	if caps == nil {
		caps = map[string]string{}
	}
	maps.Copy(caps, announced)
	return caps
}

// versionFor returns the version of an index item to install: the
// approved one, the newest kept one at or below a cap, or the newest.
func versionFor(key, name string, it index.Item, pick, caps map[string]string) (string, []string, error) {
	want := it.Version
	if v, ok := pick[name]; ok {
		want = v
	} else if limit, ok := caps[name]; ok {
		want = ""
		for _, k := range it.Kept { // newest first
			if c, err := version.Compare(k, limit); err == nil && c <= 0 {
				want = k
				break
			}
		}
		if want == "" {
			return "", nil, failure.Newf(failure.NotFound, key, "holds no version of %s at or below %s, the deployed version", name, limit)
		}
	}
	files, ok := it.FilesOf(want)
	if !ok {
		return "", nil, failure.Newf(failure.NotFound, key, "does not hold %s %s", name, want)
	}
	return want, files, nil
}
