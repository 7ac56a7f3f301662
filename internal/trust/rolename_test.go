package trust

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/testkit/trusttest"
)

func TestCheckRoleName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"bins-0a", true},
		{"bins-ff", true},
		{"vendor.sub_role-1", true},
		{"A1", true},
		{strings.Repeat("r", MaxRoleNameLen), true},
		{"", false},
		{strings.Repeat("r", MaxRoleNameLen+1), false},
		{"../../x", false},
		{"..", false},
		{"a..b", false},
		{"a/b", false},
		{"a\\b", false},
		{".hidden", false},
		{"-x", false},
		{"a b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"rôle", false},
		{"root", false},
		{"targets", false},
		{"snapshot", false},
		{"timestamp", false},
	} {
		if err := CheckRoleName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckRoleName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestHostileRoleNames: a repository validly signed by whoever holds the
// targets key, delegating to roles whose names would be file names
// outside a metadata directory (or another role's files), is refused as
// a verification failure, by name, before the role is fetched; a valid
// name in the same construction verifies.
func TestHostileRoleNames(t *testing.T) {
	now := time.Now()
	f := fetch.New(fetch.Options{})
	for _, tc := range []struct {
		d  trusttest.Delegation
		ok bool
	}{
		{trusttest.Delegation{Roles: []string{"good-role"}}, true},
		{trusttest.Delegation{BinsPrefix: "bins"}, true},
		{trusttest.Delegation{Roles: []string{"../../x"}}, false},
		{trusttest.Delegation{BinsPrefix: "../../x"}, false},
		{trusttest.Delegation{Roles: []string{"root"}}, false},
		{trusttest.Delegation{Roles: []string{"a/b"}}, false},
	} {
		r := trusttest.New(t, now, tc.d)
		src := Source{Name: "hostile", Base: r.Serve(t, "vendor")}
		s, err := Init(filepath.Join(t.TempDir(), "trust"), r.Root, Options{Kind: "vendor", Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		v, err := s.Probe(ctx, src, f)
		if err != nil {
			t.Fatalf("%+v: probe: %v", tc.d, err)
		}
		_, errTarget := v.Target(ctx, "a.txt")
		errAll := v.LoadAllRoles(ctx)
		if tc.ok {
			if errTarget != nil || errAll != nil {
				t.Errorf("%+v: valid delegation refused: %v / %v", tc.d, errTarget, errAll)
			}
			if err := s.Commit(v); err != nil {
				t.Errorf("%+v: commit: %v", tc.d, err)
			}
			continue
		}
		for _, err := range []error{errTarget, errAll} {
			if !failure.Is(err, failure.Verification) || !strings.Contains(err.Error(), "invalid role name") {
				t.Errorf("%+v: %v, want a verification failure naming the role", tc.d, err)
			}
		}
		for name := range v.Files() {
			if strings.Contains(name, "/") {
				t.Errorf("%+v: Files() names %q", tc.d, name)
			}
		}
	}
}

func TestParseRootSHA256(t *testing.T) {
	want := RootSHA256([]byte("root"))
	digits := strings.TrimPrefix(want, "sha256:")
	for _, s := range []string{want, digits, strings.ToUpper(want), " " + want + "\n", digits + "  1.root.json\n"} {
		if got, err := ParseRootSHA256(s); err != nil || got != want {
			t.Errorf("ParseRootSHA256(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "sha256:", digits[:62], digits + "00", "md5:" + digits, "sha256:" + strings.Replace(digits, digits[:1], "g", 1)} {
		if _, err := ParseRootSHA256(s); err == nil {
			t.Errorf("ParseRootSHA256(%q) accepted", s)
		}
	}
}
