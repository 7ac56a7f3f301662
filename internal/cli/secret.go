package cli

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Secrets never come from the command line: every user of the machine
// sees a process's arguments (ps, /proc/PID/cmdline), while its
// environment and a 0600 file are its owner's. A flag that used to take a
// secret stays registered, hidden, so that giving it says what to do
// instead.

// refusedSecretFlag registers the hidden flag name, which refuseSecretFlag
// then refuses.
func refusedSecretFlag(f *pflag.FlagSet, name string, v *string) {
	f.StringVar(v, name, "", "refused: a secret on the command line shows in the process list")
	f.MarkHidden(name)
}

// refuseSecretFlag returns the usage error of a secret given as --name,
// naming the ways to give it instead, or nil when value is empty.
func refuseSecretFlag(name, value, instead string) error {
	if value == "" {
		return nil
	}
	return usageError(fmt.Errorf("--%s is refused: every user of this machine can read a command line (ps); give the secret by %s", name, instead))
}

// readSecret returns the first line of file if given, else the secret in
// the environment variable env, else the first line of the file the
// environment variable fileEnv names; "" when none is set. what names the
// secret in errors.
func readSecret(what, env, file, fileEnv string) (string, error) {
	if file == "" {
		if s := strings.TrimSpace(os.Getenv(env)); s != "" {
			return s, nil
		}
		if file = os.Getenv(fileEnv); file == "" {
			return "", nil
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usageError(fmt.Errorf("%s: %w", what, err))
	}
	s, _, _ := strings.Cut(string(b), "\n")
	if s = strings.TrimSpace(s); s == "" {
		return "", usageError(fmt.Errorf("%s: %s is empty", what, file))
	}
	return s, nil
}

// checkURLFlag refuses a URL given as --name that holds a password (in
// its user information or as a password parameter, or a connection
// string's password=), which would show in the process list; instead
// says where to put the password.
func checkURLFlag(name, value, instead string) error {
	if value == "" {
		return nil
	}
	u, err := url.Parse(value)
	if err != nil {
		return usageError(fmt.Errorf("--%s: not a URL", name))
	}
	_, hasPassword := u.User.Password()
	// A keyword/value connection string ("host=db password=...") parses
	// as a relative URL.
	if hasPassword || u.Query().Has("password") || strings.Contains(strings.ToLower(value), "password=") {
		return usageError(fmt.Errorf("--%s holds a password, which every user of this machine can read in the process list: give it %s", name, instead))
	}
	return nil
}

// checkServerURLFlags applies checkURLFlag to the --database and --proxy
// flags of the server commands.
func checkServerURLFlags(database, proxy string) error {
	if err := checkURLFlag("database", database, "by $PGPASSWORD or ~/.pgpass, or in the database field of server.json"); err != nil {
		return err
	}
	return checkURLFlag("proxy", proxy, "in the proxy field of server.json")
}
