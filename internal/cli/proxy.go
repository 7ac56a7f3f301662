package cli

import (
	"net/http"
	"net/url"
)

// httpProxy honours HTTP_PROXY, HTTPS_PROXY and NO_PROXY for commands that
// reach outside the site (mirroring an origin).
func httpProxy() func(*http.Request) (*url.URL, error) { return http.ProxyFromEnvironment }
