package server

import (
	"strings"
	"testing"
)

// TestRedactDSN: the database URL the server logs, shows in its status
// and names in configuration errors keeps no password, given in the user
// information or in the query string.
func TestRedactDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://cascade:s3cret@db/cascade",
		"postgres://cascade@db/cascade?sslmode=disable&password=s3cret",
		"postgresql://db/cascade?user=cascade&PASSWORD=s3cret",
		"mysql://db/cascade?password=s3cret", // named in the error that refuses it
	} {
		if got := redactDSN(dsn); strings.Contains(got, "s3cret") {
			t.Errorf("redactDSN(%q) = %q", dsn, got)
		}
	}
}
