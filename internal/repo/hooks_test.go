package repo

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommitHook: Options.Commit sees each new state before it is
// visible: the previous and new timestamp versions, the new
// timestamp.json byte for byte, and every file the commit adds; its error
// leaves the published tree as it was.
func TestCommitHook(t *testing.T) {
	r, c := newTestRepo(t, smallSettings())
	var got []Commit
	fail := false
	r2, err := Open(r.Dir(), Options{Now: c.Now, Commit: func(ctx context.Context, cm Commit) error {
		if fail {
			return errors.New("refused")
		}
		got = append(got, cm)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	mustPublish(t, r2, component("pattern", "1", data("a", "1")))
	if len(got) != 1 || got[0].Timestamp != got[0].Previous+1 {
		t.Fatalf("commits: %+v", got)
	}
	ts, err := os.ReadFile(filepath.Join(r2.PublishedDir(), "metadata", "timestamp.json"))
	if err != nil || string(ts) != string(got[0].TimestampJSON) {
		t.Fatalf("timestamp.json differs from the committed one (%v)", err)
	}
	var target, snapshot bool
	for p, b := range got[0].Files {
		on, err := os.ReadFile(filepath.Join(r2.PublishedDir(), filepath.FromSlash(p)))
		if err != nil || string(on) != string(b) {
			t.Fatalf("file %s: %v", p, err)
		}
		target = target || strings.HasSuffix(p, ".a") && strings.HasPrefix(p, "targets/components/pattern/1/")
		snapshot = snapshot || strings.HasSuffix(p, ".snapshot.json")
	}
	if !target || !snapshot {
		t.Fatalf("files of the commit: %v", slicesOf(got[0].Files))
	}
	before := treeDigest(t, r2.PublishedDir())
	fail = true
	if _, err := r2.Refresh(context.Background(), c.Now()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("refresh with a refusing hook: %v", err)
	}
	if after := treeDigest(t, r2.PublishedDir()); !maps.Equal(before, after) {
		t.Fatal("a refused commit changed the published tree")
	}
}

// TestKeysSource: with Options.Keys the online keys come from it, not
// from DIR/keys; a key it lacks stops the publish with the role named.
func TestKeysSource(t *testing.T) {
	r, c := newTestRepo(t, smallSettings())
	pems := map[string][]byte{}
	for _, role := range onlineRoles {
		b, err := os.ReadFile(r.l.keyFile(role))
		if err != nil {
			t.Fatal(err)
		}
		pems[role] = b
	}
	if err := os.RemoveAll(r.l.keysDir()); err != nil {
		t.Fatal(err)
	}
	src := func(role string) ([]byte, error) {
		if b, ok := pems[role]; ok {
			return b, nil
		}
		return nil, os.ErrNotExist
	}
	r2, err := Open(r.Dir(), Options{Now: c.Now, Keys: src})
	if err != nil {
		t.Fatal(err)
	}
	mustPublish(t, r2, component("pattern", "1", data("a", "1")))
	delete(pems, "timestamp")
	r3, _ := Open(r.Dir(), Options{Now: c.Now, Keys: src})
	if _, err := r3.Refresh(context.Background(), c.Now()); err == nil || !strings.Contains(err.Error(), "timestamp key") {
		t.Fatalf("refresh without the timestamp key: %v", err)
	}
}

func slicesOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCommitHookReusedTarget: a commit that references a content-addressed
// target file already on disk (content published before, perhaps garbage
// of an older state) hands it to Options.Commit too, so that a copy of the
// repository that pruned the file (the management server's database) gets
// it back.
func TestCommitHookReusedTarget(t *testing.T) {
	r, c := newTestRepo(t, smallSettings())
	var got []Commit
	r2, err := Open(r.Dir(), Options{Now: c.Now, Commit: func(ctx context.Context, cm Commit) error {
		got = append(got, cm)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	mustPublish(t, r2, component("pattern", "1", data("a", "1")))
	var rel string
	for p := range got[0].Files {
		if strings.HasPrefix(p, "targets/components/pattern/1/") && strings.HasSuffix(p, ".a") {
			rel = p
		}
	}
	if rel == "" {
		t.Fatalf("files of the first commit: %v", slicesOf(got[0].Files))
	}
	err = r2.write(context.Background(), c.Now(), func(op *writeOp) error {
		hf, err := op.tree.copyTarget(strings.NewReader("1"), r2.l.fromRel("targets/components/pattern/1"), "a")
		if err != nil {
			return err
		}
		if !hf.existed {
			t.Errorf("the same content was copied anew: %+v", hf)
		}
		return r2.commit(op, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[1].Files[rel]) != "1" {
		t.Fatalf("the second commit does not hand %s on: %v", rel, slicesOf(got[len(got)-1].Files))
	}
}
