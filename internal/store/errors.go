package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors for a database that fails as a whole; see also the
// sentinels in store.go.
var (
	// ErrReadOnly: the database cannot be written (a read-only file, a
	// read-only transaction or role, a standby).
	ErrReadOnly = errors.New("the database cannot be written")
	// ErrUnavailable: the database is busy, cannot be reached or refused
	// the connection; trying again later may succeed.
	ErrUnavailable = errors.New("the database is unavailable")
)

// ConflictError details an ErrConflict of a uniqueness rule: what is
// already taken and, when known, by which record. errors.Is(err,
// ErrConflict) holds for it; errors.As finds it.
type ConflictError struct {
	// Key names what must be unique: "agent id", "domain name", ...
	Key string
	// Value is the value already taken, when known ("ua-1").
	Value string
	// Holder names the record holding it, when known
	// ("endpoint pc-4711 (ep_...)").
	Holder string
	cause  error
}

func (e *ConflictError) Error() string {
	s := e.Key
	if e.Value != "" {
		s += " " + e.Value
	}
	s += " is already used"
	if e.Holder != "" {
		s += " by " + e.Holder
	}
	return s
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns the driver's error (see DriverError).
func (e *ConflictError) Unwrap() error { return e.cause }

// dbError is an error the database reported, described in the store's
// words: its text never carries the driver's message, which stays
// reachable for the server's log through DriverError.
type dbError struct {
	kind  error // a sentinel, or nil
	msg   string
	cause error
}

func (e *dbError) Error() string { return e.msg }

func (e *dbError) Is(target error) bool { return e.kind != nil && target == e.kind }

func (e *dbError) Unwrap() error { return e.cause }

// DriverError returns the database driver's own error behind err (a store
// error), or nil when there is none. Its text is for the server's log,
// never for a client: the store's errors say what failed in the store's
// words without it.
func DriverError(err error) error {
	var de *dbError
	if errors.As(err, &de) {
		return de.cause
	}
	var ce *ConflictError
	if errors.As(err, &ce) {
		return ce.cause
	}
	return nil
}

// translate returns err with a driver error in it replaced by a *dbError
// or *ConflictError in the store's words. Errors already translated, and
// errors that hold no driver error (the store's own, a context's), are
// returned as they are.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var (
		de *dbError
		ce *ConflictError
	)
	if errors.As(err, &de) || errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return sqliteError(se, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return postgresError(pe, err)
	}
	var (
		ne  net.Error
		pce *pgconn.ConnectError
		ppe *pgconn.ParseConfigError
	)
	switch {
	case errors.As(err, &ppe):
		return &dbError{kind: ErrInvalid, msg: "the database URL is malformed", cause: err}
	case errors.As(err, &pce), errors.As(err, &ne):
		return &dbError{kind: ErrUnavailable, msg: "the database server cannot be reached", cause: err}
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return &dbError{kind: ErrUnavailable, msg: "the connection to the database was lost", cause: err}
	}
	return err
}

// sqliteError describes an SQLite error.
func sqliteError(se *sqlite.Error, err error) error {
	code := se.Code()
	switch code {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		// "UNIQUE constraint failed: endpoints.agent_id"
		cols := se.Error()
		if i := strings.LastIndex(cols, "failed: "); i >= 0 {
			cols = cols[i+len("failed: "):]
		}
		cols, _, _ = strings.Cut(cols, " (")
		table := ""
		var names []string
		for _, c := range strings.Split(cols, ",") {
			t, col, ok := strings.Cut(strings.TrimSpace(c), ".")
			if ok {
				table = t
			}
			names = append(names, col)
		}
		return &ConflictError{Key: uniqueKey(table, names), cause: err}
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return &dbError{kind: ErrNotFound, msg: "a record it refers to does not exist", cause: err}
	case sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_CHECK:
		return &dbError{kind: ErrInvalid, msg: "a value breaks a rule of the database schema", cause: err}
	}
	switch code & 0xff {
	case sqlite3.SQLITE_READONLY:
		return &dbError{kind: ErrReadOnly, msg: "the database file or its directory is read-only", cause: err}
	case sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
		return &dbError{kind: ErrReadOnly, msg: "access to the database file was denied", cause: err}
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return &dbError{kind: ErrUnavailable, msg: "the database is locked by another process", cause: err}
	case sqlite3.SQLITE_CANTOPEN:
		return &dbError{kind: ErrUnavailable, msg: "the database file cannot be opened (a missing directory or no permission)", cause: err}
	case sqlite3.SQLITE_FULL:
		return &dbError{kind: ErrUnavailable, msg: "the disk holding the database is full", cause: err}
	case sqlite3.SQLITE_NOTADB:
		return &dbError{msg: "the file is not an SQLite database", cause: err}
	case sqlite3.SQLITE_CORRUPT:
		return &dbError{msg: "the database file is damaged", cause: err}
	case sqlite3.SQLITE_IOERR:
		return &dbError{msg: "reading or writing the database file failed (I/O error)", cause: err}
	case sqlite3.SQLITE_INTERRUPT:
		return &dbError{msg: "the database operation was interrupted", cause: err}
	}
	return &dbError{msg: fmt.Sprintf("the database failed (SQLite result code %d)", code), cause: err}
}

// postgresError describes a PostgreSQL error by its SQLSTATE.
func postgresError(pe *pgconn.PgError, err error) error {
	switch pe.Code {
	case "23505": // unique_violation: Detail is "Key (a, b)=(...) already exists."
		var names []string
		if _, after, ok := strings.Cut(pe.Detail, "Key ("); ok {
			if cols, _, ok := strings.Cut(after, ")="); ok {
				for _, c := range strings.Split(cols, ",") {
					names = append(names, strings.TrimSpace(c))
				}
			}
		}
		return &ConflictError{Key: uniqueKey(pe.TableName, names), cause: err}
	case "23503": // foreign_key_violation
		return &dbError{kind: ErrNotFound, msg: "a record it refers to does not exist", cause: err}
	case "23502", "23514": // not_null_violation, check_violation
		return &dbError{kind: ErrInvalid, msg: "a value breaks a rule of the database schema", cause: err}
	case "25006": // read_only_sql_transaction
		return &dbError{kind: ErrReadOnly, msg: "the database accepts only reads (a read-only transaction or a standby)", cause: err}
	case "42501": // insufficient_privilege
		return &dbError{kind: ErrReadOnly, msg: "the database role lacks a privilege it needs", cause: err}
	case "28000", "28P01": // invalid_authorization_specification, invalid_password
		return &dbError{kind: ErrUnavailable, msg: "the database refused the user name or password", cause: err}
	case "3D000": // invalid_catalog_name
		return &dbError{kind: ErrUnavailable, msg: "the database does not exist", cause: err}
	case "53100": // disk_full
		return &dbError{kind: ErrUnavailable, msg: "the disk holding the database is full", cause: err}
	case "53300", "57P03": // too_many_connections, cannot_connect_now
		return &dbError{kind: ErrUnavailable, msg: "the database server accepts no connection now", cause: err}
	case "40001", "40P01", "55P03": // serialization_failure, deadlock_detected, lock_not_available
		return &dbError{kind: ErrUnavailable, msg: "the database is busy (a conflicting transaction); try again", cause: err}
	case "57014": // query_canceled
		return &dbError{msg: "the database cancelled the operation (a statement timeout)", cause: err}
	}
	return &dbError{msg: "the database failed (PostgreSQL SQLSTATE " + pe.Code + ")", cause: err}
}

// uniqueKeys names, in the store's words, what the unique constraints of
// the schema keep unique: "table.column[,column]" (columns sorted).
var uniqueKeys = map[string]string{
	"admin_tokens.secret_hash":                            "admin token secret",
	"enrollment_tokens.secret_hash":                       "enrollment token secret",
	"domains.name":                                        "domain name",
	"domain_settings.domain":                              "domain name",
	"endpoints.agent_id":                                  "agent id",
	"endpoints.credential_hash":                           "endpoint credential",
	"report_categories.category,report_id":                "report category",
	"last_reports.endpoint_id":                            "last report of the endpoint",
	"policies.version":                                    "policy version",
	"program_approvals.domain,program":                    "program approval",
	"components.name":                                     "component name",
	"notification_deliveries.endpoint_id,notification_id": "notification delivery",
}

// uniqueKey returns what the unique columns of table hold.
func uniqueKey(table string, cols []string) string {
	sort.Strings(cols)
	key := table + "." + strings.Join(cols, ",")
	if k, ok := uniqueKeys[key]; ok {
		return k
	}
	if len(cols) == 1 && cols[0] == "id" && table != "" {
		return "id of a new " + strings.TrimSuffix(strings.ReplaceAll(table, "_", " "), "s") + " record"
	}
	return "a unique value"
}

// fail wraps err with the operation's name, translating a database error
// into the store's words and sentinels (translate): no rows and a foreign
// key violation (a missing referred record) are ErrNotFound, a unique
// violation ErrConflict (a *ConflictError). Errors already carrying a
// sentinel are only named.
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", op, translate(err))
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (another connection
// holds a lock this one needs).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}
