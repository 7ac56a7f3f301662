package main

import "testing"

func TestFilesNeeded(t *testing.T) {
	for _, c := range []struct {
		name string
		o    options
		want uint64
	}{
		{"a connection per stream", options{Endpoints: 18000, Sources: 8, Processes: 2}, 18000 + 1024},
		{"100,000 HTTP/2 streams, 250 per connection", options{Endpoints: 100000, Sources: 8, Processes: 2, StreamsPerConn: 250},
			2*(400+16) + 1024},
		{"one stream per HTTP/2 connection", options{Endpoints: 1000, Sources: 1, Processes: 1, StreamsPerConn: 1}, 2*(1000+1) + 1024},
	} {
		if got := filesNeeded(c.o); got != c.want {
			t.Errorf("%s: filesNeeded = %d, want %d", c.name, got, c.want)
		}
	}
	// The run fits this machine's hard limit of 20,000 open files.
	if got := filesNeeded(options{Endpoints: 100000, Sources: 8, Processes: 2, StreamsPerConn: 250}); got > 20000 {
		t.Errorf("100,000 streams need %d open files, more than 20,000", got)
	}
}
