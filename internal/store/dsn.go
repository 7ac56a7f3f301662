package store

import (
	"net/url"
	"regexp"
	"strings"
)

// redactedMark replaces a password in RedactDSN's output.
const redactedMark = "xxxxx"

// secretParams are the connection parameters (lowercase) whose values
// RedactDSN hides.
var secretParams = map[string]bool{"password": true, "sslpassword": true}

// keyValuePassword finds password=VALUE in a key=value connection string
// (VALUE quoted or up to the next space).
var keyValuePassword = regexp.MustCompile(`(?i)\b(ssl)?password\s*=\s*('(\\.|[^'])*'|[^\s]*)`)

// RedactDSN returns dsn fit to log or print: the password of a PostgreSQL
// URL, given in its user information or as a password or sslpassword
// query parameter, is replaced with "xxxxx". A URL that does not parse is
// reduced to its scheme; an SQLite path is returned as it is.
func RedactDSN(dsn string) string {
	if !hasPrefixFold(dsn, "postgres://") && !hasPrefixFold(dsn, "postgresql://") {
		if hasPrefixFold(dsn, "sqlite:") || !strings.Contains(strings.ToLower(dsn), "password") {
			return dsn
		}
		return keyValuePassword.ReplaceAllString(dsn, "${1}password="+redactedMark)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://(unparsable URL hidden)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redactedMark)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			if dk, err := url.QueryUnescape(k); err == nil {
				k = dk
			}
			if secretParams[strings.ToLower(strings.TrimSpace(k))] {
				parts[i] = url.QueryEscape(k) + "=" + redactedMark
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}
