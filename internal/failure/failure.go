// Package failure classifies why a source was unable to update an endpoint.
//
// docs/update-process.md (Unable to update) defines a source as unable to update when it cannot
// be reached, answers an HTTP error, does not hold the category, serves
// something that fails verification, is stale, or is too slow. Every error
// that crosses a package boundary on the update path carries one of these
// classes, so that the update run, the report and the server's analytics
// agree on what happened.
package failure

import (
	"errors"
	"fmt"
	"strings"
)

// Class is the reason a source could not update an endpoint. The string
// values appear in reports and JSON; they are a fixed interface.
type Class string

// The failure classes of docs/update-process.md.
const (
	// Unreachable: connection refused, DNS, TLS, connect or header timeout.
	Unreachable Class = "unreachable"
	// HTTPError: the source answered with an unexpected HTTP status
	// (other than 404), a redirect it may not follow, or a malformed reply.
	HTTPError Class = "http_error"
	// NotFound: the source does not hold the repository or the category
	// ("not available or not found" in the seed).
	NotFound Class = "not_found"
	// Stale: the source's metadata is older than what the endpoint trusts or
	// than the version the server announced.
	Stale Class = "stale"
	// Verification: bad signature, hash, length, expired metadata, or
	// anything else that fails TUF verification.
	Verification Class = "verification_failed"
	// TooSlow: the transfer fell below the minimum rate or exceeded its
	// total time budget.
	TooSlow Class = "too_slow"
	// Local: the failure is on the endpoint itself (disk full, permission);
	// trying another source would not help.
	Local Class = "local"
)

// Error is an error with a failure class and the operation that failed.
type Error struct {
	Class Class
	Op    string // what was being done, e.g. "fetch timestamp.json"
	Err   error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("%s: %v", e.Class, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Op, e.Class, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Detail is err's message without the class of its first *Error (the
// operation and the cause stay), for where the class is shown apart,
// as in a report's attempts.
func Detail(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var e *Error
	if !errors.As(err, &e) || e.Err == nil {
		return msg
	}
	without := e.Err.Error()
	if e.Op != "" {
		without = e.Op + ": " + without
	}
	return strings.Replace(msg, e.Error(), without, 1)
}

// New returns an error of class c for operation op.
func New(c Class, op string, err error) error {
	if err == nil {
		err = errors.New(string(c))
	}
	return &Error{Class: c, Op: op, Err: err}
}

// Newf is New with a formatted message.
func Newf(c Class, op, format string, args ...any) error {
	return New(c, op, fmt.Errorf(format, args...))
}

// ClassOf returns the class of the first *Error in err's chain, or "" if
// err carries none (or is nil).
func ClassOf(err error) Class {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Class
	}
	return ""
}

// Is reports whether err carries class c.
func Is(err error, c Class) bool { return err != nil && ClassOf(err) == c }

// ConnectionLevel reports whether err means the source itself could not be
// talked to. docs/update-process.md, Running a plan: a source that failed at connection level
// is not contacted again in the same run.
func ConnectionLevel(err error) bool {
	c := ClassOf(err)
	return c == Unreachable || c == TooSlow
}
