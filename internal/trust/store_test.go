package trust

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRolePool: delegated roles live in a content-addressed pool shared
// by generations; a commit writes only the roles that changed and prunes
// the ones no generation names; another Store on the same directory sees
// each commit; a commit of what is already trusted writes nothing; a
// generation in the layout before the pool is still read.
func TestRolePool(t *testing.T) {
	fx := newFixture(t)
	for _, name := range []string{"a", "b", "c", "d"} {
		fx.publish(name, "1.0", map[string]string{"f": name})
	}
	src := fx.serve(nil)
	loadAll := func(s *Store) {
		t.Helper()
		v, err := s.Probe(context.Background(), src, fx.f)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.LoadAllRoles(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(v); err != nil {
			t.Fatal(err)
		}
	}
	loadAll(fx.store)
	manifest := func() map[string]string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(fx.store.dir, "current", rolesManifest))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	pool := func() []string {
		entries, _ := os.ReadDir(filepath.Join(fx.store.dir, rolesPool))
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	first := manifest()
	// Empty bins of the same version are the same bytes: one file.
	if len(first) != 8 || len(pool()) != len(invert(first)) {
		t.Fatalf("after the first commit: %d roles, pool %v", len(first), pool())
	}
	mtimes := map[string]int64{}
	for _, sum := range first {
		fi, _ := os.Stat(filepath.Join(fx.store.dir, rolesPool, sum+".json"))
		mtimes[sum] = fi.ModTime().UnixNano()
	}
	gen, _ := os.Readlink(filepath.Join(fx.store.dir, "current"))

	// Nothing new: no generation written.
	loadAll(fx.store)
	if again, _ := os.Readlink(filepath.Join(fx.store.dir, "current")); again != gen {
		t.Fatalf("an up-to-date commit wrote generation %s", again)
	}

	// One item more changes one bin (and the index's bin): another Store
	// on the directory commits it, the first one sees it.
	other, err := Open(fx.store.dir, Options{Kind: "vendor", Now: fx.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	fx.publish("e", "1.0", map[string]string{"f": "e"})
	loadAll(other)
	second := manifest()
	changed := 0
	for role, sum := range second {
		if first[role] != sum {
			changed++
			continue
		}
		fi, _ := os.Stat(filepath.Join(fx.store.dir, rolesPool, sum+".json"))
		if fi.ModTime().UnixNano() != mtimes[sum] {
			t.Errorf("unchanged role %s was rewritten", role)
		}
	}
	if changed == 0 || changed > 2 {
		t.Fatalf("%d roles changed by one publish", changed)
	}
	want := slices.Sorted(maps.Keys(invert(second)))
	for i := range want {
		want[i] += ".json"
	}
	if got := pool(); !slices.Equal(got, want) {
		t.Fatalf("pool %v, want the current roles %v", got, want)
	}
	ts1, _, _ := fx.store.Versions()
	ts2, _, _ := other.Versions()
	if ts1 != ts2 || ts1 == 0 {
		t.Fatalf("the two stores trust timestamps %d and %d", ts1, ts2)
	}

	// The layout before the pool.
	cur := filepath.Join(fx.store.dir, "current")
	os.MkdirAll(filepath.Join(cur, "roles"), 0o700)
	for role, sum := range second {
		b, err := os.ReadFile(filepath.Join(fx.store.dir, rolesPool, sum+".json"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(cur, "roles", role+".json"), b, 0o600)
	}
	os.Remove(filepath.Join(cur, rolesManifest))
	os.RemoveAll(filepath.Join(fx.store.dir, rolesPool))
	legacy, err := Open(fx.store.dir, Options{Kind: "vendor", Now: fx.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	st, err := legacy.load()
	if err != nil || len(st.roles) != len(second) {
		t.Fatalf("legacy generation: %d roles, %v", len(st.roles), err)
	}
	fx.publish("f", "1.0", map[string]string{"f": "f"})
	loadAll(legacy)
	if m := manifest(); len(m) != len(second) {
		t.Fatalf("after a commit over the legacy layout: %d roles", len(m))
	}
}

func invert(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[v] = k
	}
	return out
}
