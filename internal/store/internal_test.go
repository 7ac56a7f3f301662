package store

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		secret, h, err := NewSecret("cascade_admin_")
		if err != nil {
			t.Fatal(err)
		}
		rest, ok := strings.CutPrefix(secret, "cascade_admin_")
		if !ok || len(rest) != 43 || strings.ContainsAny(rest, "+/=") {
			t.Fatalf("secret %q: want the prefix and 43 URL-safe characters", secret)
		}
		if h != HashSecret(secret) || h.IsZero() {
			t.Fatalf("hash of %q is not HashSecret of it", secret)
		}
		if seen[secret] {
			t.Fatalf("secret %q twice", secret)
		}
		seen[secret] = true
	}
}

func TestParseHash(t *testing.T) {
	h := HashSecret("x")
	got, err := ParseHash(h.String())
	if err != nil || got != h {
		t.Fatalf("ParseHash(%s) = %v, %v", h, got, err)
	}
	for _, bad := range []string{"", "zz", h.String()[:62], h.String() + "00"} {
		if _, err := ParseHash(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseHash(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

// TestNewID: IDs made later sort later; IDs made in the same millisecond
// differ.
func TestNewID(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := newID("rpt", t0)
	if !strings.HasPrefix(prev, "rpt_") || len(prev) != len("rpt_")+26 {
		t.Fatalf("id %q", prev)
	}
	for i := 1; i < 1000; i++ {
		id := newID("rpt", t0.Add(time.Duration(i)*time.Millisecond))
		if id <= prev {
			t.Fatalf("id %q made later sorts before %q", id, prev)
		}
		prev = id
	}
	if a, b := newID("x", t0), newID("x", t0); a == b {
		t.Fatal("two IDs of the same millisecond are equal")
	}
}

func TestChunkSizes(t *testing.T) {
	for n := range 1200 {
		sum, sizes := 0, chunkSizes(n)
		for i, s := range sizes {
			if s > bulkRows || s&(s-1) != 0 || (i > 0 && s > sizes[i-1]) {
				t.Fatalf("chunkSizes(%d) = %v", n, sizes)
			}
			sum += s
		}
		if sum != n || len(sizes) > n/bulkRows+9 {
			t.Fatalf("chunkSizes(%d) = %v", n, sizes)
		}
	}
	if q := insertDeliveries.query(2); !strings.HasSuffix(q, "VALUES (?,?,?,?),(?,?,?,?)") {
		t.Fatalf("query(2) = %q", q)
	}
}

func TestRebind(t *testing.T) {
	s := &sqlStore{kind: dialectPostgres}
	if got := s.q("a = ? AND b IN (?, ?)"); got != "a = $1 AND b IN ($2, $3)" {
		t.Fatalf("rebound %q", got)
	}
	s.kind = dialectSQLite
	if got := s.q("a = ?"); got != "a = ?" {
		t.Fatalf("sqlite query changed: %q", got)
	}
}

// TestSQLiteSynchronousFull: every SQLite connection commits with
// synchronous=FULL (2), so an acknowledged write survives a power cut.
func TestSQLiteSynchronousFull(t *testing.T) {
	st, err := Open(t.Context(), "sqlite:"+t.TempDir()+"/cascade.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	for name, db := range map[string]*sql.DB{"writer": s.w, "reader": s.r} {
		var mode int
		if err := db.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != 2 {
			t.Errorf("%s: PRAGMA synchronous = %d, want 2 (FULL)", name, mode)
		}
	}
}
