package server

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInitVendorRootNotARoot: `server init --vendor-root` given another
// file says what the file is and what is wanted, not a JSON decoder's
// complaint.
func TestInitVendorRootNotARoot(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", "not a JSON file"},
		{`{"signed":{"_type":"timestamp","version":1},"signatures":[]}`, "a TUF timestamp metadata file, not a root"},
		{`{"origin":"http://o/"}`, "not TUF metadata"},
	} {
		_, err := Init(filepath.Join(t.TempDir(), "server"), InitOptions{VendorRoot: []byte(c.data), Now: time.Now,
			Config: Config{Origin: "http://127.0.0.1:1/"}})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "1.root.json") ||
			strings.Contains(err.Error(), "invalid character") {
			t.Errorf("%.20q: %v, want %q", c.data, err, c.want)
		}
	}
}
