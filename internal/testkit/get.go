package testkit

import (
	"io"
	"net/http"
	"testing"
)

// Get sends a GET for url with the given request headers through c
// (http.DefaultClient if nil) and returns the response, its body read
// whole and closed. A transport or read error fails the test; any status
// is returned for the test to judge.
func Get(t testing.TB, c *http.Client, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the body of %s: %v", url, err)
	}
	return resp, b
}
