package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
)

// serverCommands registers the subcommands of `cascade server`; each
// lives in its own server_*.go file.
var serverCommands []func() *cobra.Command

func init() {
	register(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "server",
			Short: "Run and administer the management server",
			Long: `The management server mirrors the origin, signs the site repository (policy,
deployment caps, domain settings, program approvals), enrolls endpoints and
keeps their reports, and notifies them of new components.

"init" and "run" work on the data directory; "admin create" makes the first
admin token directly in the database; every other subcommand calls the admin
API (docs/api.md) with an admin token from $CASCADE_ADMIN_TOKEN, --token-file
or $CASCADE_ADMIN_TOKEN_FILE (never from the command line, which every user
can read). The server is --server (or
$CASCADE_SERVER, an https:// URL) with its key pinned by --fingerprint (or
$CASCADE_SERVER_FINGERPRINT); on the server machine, --data DIR supplies both.`,
		}
		for _, f := range serverCommands {
			cmd.AddCommand(f())
		}
		return cmd
	})
}

// adminConn are the flags that reach the admin API.
type adminConn struct {
	Server      string
	Fingerprint string
	Token       string
	TokenFile   string
	Data        string
	JSON        bool
	Timeout     time.Duration
}

// flags registers the connection flags on f.
func (c *adminConn) flags(f *pflag.FlagSet) {
	f.StringVar(&c.Server, "server", "", "server base URL, https:// (default $CASCADE_SERVER, or the url of --data)")
	f.StringVar(&c.Fingerprint, "fingerprint", "", "pinned SHA-256 fingerprint of the server's key (default $CASCADE_SERVER_FINGERPRINT, or the certificate of --data)")
	refusedSecretFlag(f, "token", &c.Token)
	f.StringVar(&c.TokenFile, "token-file", "", "file holding the admin token (0600; default $CASCADE_ADMIN_TOKEN_FILE; $CASCADE_ADMIN_TOKEN holds the token itself)")
	f.StringVar(&c.Data, "data", "", "server data directory: take the URL and certificate from it")
	f.BoolVar(&c.JSON, "json", false, "print the answer as JSON")
	f.DurationVar(&c.Timeout, "timeout", 30*time.Second, "give up on each call to the server after this long")
}

// client builds the API client from the flags, the environment and the
// data directory, in that order.
func (c *adminConn) client() (*api.Client, error) {
	srv, fps := firstOf(c.Server, os.Getenv("CASCADE_SERVER")), firstOf(c.Fingerprint, os.Getenv("CASCADE_SERVER_FINGERPRINT"))
	if c.Data != "" && (srv == "" || fps == "") {
		cfg, err := server.LoadConfig(c.Data)
		if err != nil {
			return nil, usageError(err)
		}
		if srv == "" {
			srv = cfg.URL
		}
		if fps == "" {
			cert := cfg.TLSCert
			if !filepath.IsAbs(cert) {
				cert = filepath.Join(c.Data, cert)
			}
			fp, err := server.KeyFingerprint(cert)
			if err != nil {
				return nil, err
			}
			fps = fp.String()
		}
	}
	if srv == "" {
		return nil, usageError(errors.New("no server: give --server URL (or --data DIR on the server machine)"))
	}
	var fp api.Fingerprint
	if fps != "" {
		var err error
		if fp, err = api.ParseFingerprint(fps); err != nil {
			return nil, usageError(err)
		}
	}
	tok, err := c.token()
	if err != nil {
		return nil, err
	}
	cl, err := api.NewClient(api.ClientOptions{URL: srv, Token: tok, Fingerprint: fp, UserAgent: "cascade-cli",
		Timeout: c.Timeout})
	if err != nil {
		return nil, usageError(err)
	}
	return cl, nil
}

func (c *adminConn) token() (string, error) {
	if err := refuseSecretFlag("token", c.Token, "--token-file FILE, $CASCADE_ADMIN_TOKEN_FILE or $CASCADE_ADMIN_TOKEN"); err != nil {
		return "", err
	}
	t, err := readSecret("admin token", "CASCADE_ADMIN_TOKEN", c.TokenFile, "CASCADE_ADMIN_TOKEN_FILE")
	if err != nil || t != "" {
		return t, err
	}
	return "", usageError(errors.New("no admin token: give --token-file FILE, $CASCADE_ADMIN_TOKEN_FILE or $CASCADE_ADMIN_TOKEN (`cascade server admin create --out FILE` makes one)"))
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// call makes one admin API call with the connection's client.
func (c *adminConn) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	if err := cl.Call(ctx, method, path, q, in, out); err != nil {
		return apiError(err)
	}
	return nil
}

// apiError turns an API error into the command's error: the server's
// refusals of bad input exit with status 2 like other usage errors; a
// server that could not be reached gets a hint.
func apiError(err error) error {
	if h := unreachableHint(err); h != err {
		return h
	}
	var se *api.StatusError
	if errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusUnprocessableEntity ||
		se.Code == http.StatusNotFound || se.Code == http.StatusConflict) {
		return usageError(err)
	}
	return err
}

// unreachableHint adds to an error of a call to the server that could
// not connect the question whether the server runs at that URL; other
// errors are returned as they are.
func unreachableHint(err error) error {
	var oe *net.OpError
	var ue *url.Error
	if errors.As(err, &oe) && oe.Op == "dial" && errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return fmt.Errorf("%w (is `cascade server run` running at %s://%s/?)", err, u.Scheme, u.Host)
		}
	}
	return err
}

// printJSON writes v indented.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// pathEscape escapes one path segment of an API path.
func pathEscape(s string) string { return url.PathEscape(s) }
