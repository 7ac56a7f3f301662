package cli

import "testing"

func TestDeltaSavings(t *testing.T) {
	for _, tt := range []struct {
		bytes, full int64
		want        string
	}{
		{1 << 20, 64 << 20, "63.0 MiB (98%)"},
		{0, 0, "-"},
		{5000, 5000, "-"},           // full downloads: nothing saved
		{5000, 0, "-"},              // an endpoint that does not report full bytes
		{0, 2048, "2.0 KiB (100%)"}, // everything rebuilt from the cache
	} {
		if got := deltaSavings(tt.bytes, tt.full); got != tt.want {
			t.Errorf("deltaSavings(%d, %d) = %q, want %q", tt.bytes, tt.full, got, tt.want)
		}
	}
}
