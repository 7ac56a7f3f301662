package cli

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/cascade-update/cascade/internal/server"
)

// serverProcessOptions are the flags of `cascade server init` and
// `cascade server join` that set up one server process: where it
// listens, the URL endpoints reach it at, the proxy to the origin, and
// its certificate. Both commands declare them through addFlags, so their
// help and defaults are the same.
type serverProcessOptions struct {
	Listen  string
	URL     string
	Proxy   string
	TLSCert string
	TLSKey  string
}

// addFlags declares the flags on f; reachedAt names what the URL reaches
// ("the server", "this process").
func (o *serverProcessOptions) addFlags(f *pflag.FlagSet, reachedAt string) {
	f.StringVar(&o.Listen, "listen", ":8443", "address to serve HTTPS on")
	f.StringVar(&o.URL, "url", "", "base URL endpoints reach "+reachedAt+" at (default https://HOSTNAME:PORT/)")
	f.StringVar(&o.Proxy, "proxy", "", "HTTP proxy to reach the origin through")
	f.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate to serve instead of a generated one")
	f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
}

// check refuses the flags' wrong combinations; cmd names the command
// ("server init") and database is its --database flag.
func (o serverProcessOptions) check(cmd, database string) error {
	if err := checkServerURLFlags(database, o.Proxy); err != nil {
		return err
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return usageError(errors.New(cmd + ": --tls-cert and --tls-key go together"))
	}
	return nil
}

// config is the server configuration of the flags.
func (o serverProcessOptions) config() server.Config {
	return server.Config{Listen: o.Listen, URL: o.URL, Proxy: o.Proxy, TLSCert: o.TLSCert, TLSKey: o.TLSKey}
}
