package store_test

import (
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/store"
)

// TestRedactDSN: no password of a database URL survives RedactDSN,
// wherever the URL carries it; everything else is kept.
func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"userinfo", "postgres://cascade:s3cret@db:5432/cascade?sslmode=disable",
			"postgres://cascade:xxxxx@db:5432/cascade?sslmode=disable"},
		{"query", "postgres://db/cascade?user=cascade&password=s3cret&sslmode=require",
			"postgres://db/cascade?user=cascade&password=xxxxx&sslmode=require"},
		{"query_case", "postgresql://db/cascade?PassWord=s3cret", "postgresql://db/cascade?PassWord=xxxxx"},
		{"query_escaped_key", "postgres://db/cascade?pass%77ord=s3cret", "postgres://db/cascade?password=xxxxx"},
		{"sslpassword", "postgres://db/cascade?sslpassword=s3cret", "postgres://db/cascade?sslpassword=xxxxx"},
		{"both", "postgres://u:s3cret@db/c?password=s3cret", "postgres://u:xxxxx@db/c?password=xxxxx"},
		{"no_password", "postgres://cascade@db/cascade?sslmode=disable", "postgres://cascade@db/cascade?sslmode=disable"},
		{"unparsable", "postgres://u:s3cret@db:port/%zz", "postgres://(unparsable URL hidden)"},
		{"key_value", "host=db user=cascade password=s3cret dbname=c", "host=db user=cascade password=xxxxx dbname=c"},
		{"key_value_quoted", "host=db password='s3 cret' dbname=c", "host=db password=xxxxx dbname=c"},
		{"sqlite", "sqlite:/var/lib/cascade/cascade.db", "sqlite:/var/lib/cascade/cascade.db"},
		{"path", "/var/lib/cascade/cascade.db", "/var/lib/cascade/cascade.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := store.RedactDSN(tc.in)
			if got != tc.want {
				t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if strings.Contains(tc.in, "s3") && strings.Contains(got, "s3") {
				t.Errorf("RedactDSN(%q) = %q keeps the password", tc.in, got)
			}
		})
	}
}
