package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"status", "status", 0}, {"sttaus", "status", 1}, {"lst", "list", 1}, {"foo", "run", 3}, {"", "ab", 2}, {"ab", "ba", 1}} {
		if d := Distance(tc.a, tc.b); d != tc.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

func TestNearest(t *testing.T) {
	cands := []string{"status", "list", "serve", "data_dir", "trusted_roots", "only_from_server"}
	for _, tc := range []struct{ typed, want string }{
		{"sttaus", "status"},
		{"lst", "list"},
		{"servee", "serve"},
		{"datadir", "data_dir"},
		{"trusted_root", "trusted_roots"},
		{"only_from_srv", "only_from_server"},
		{"Serve", "serve"},
		{"stat", "status"},
		{"foo", ""},
		{"x", ""},
		{"", ""},
	} {
		if got := Nearest(tc.typed, cands); got != tc.want {
			t.Errorf("Nearest(%q) = %q, want %q", tc.typed, got, tc.want)
		}
	}
}
