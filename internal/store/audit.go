package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Audit is the audit entry of a change about to be made with a context
// (WithAudit). The store writes the entry in the transaction of the
// first change made with that context, so that the change and its entry
// are committed together or not at all: a change whose entry cannot be
// written is not made, and a change that fails leaves no entry. Later
// changes made with the same context are covered by the same entry.
// Details known only once the change is made (an id the store assigns,
// the state after) are added to the written entry with AmendAudit.
type Audit struct {
	mu      sync.Mutex
	entry   AuditEntry
	written bool
	closed  bool
}

// NewAudit returns the pending audit entry e (Seq and At are set when it
// is written).
func NewAudit(e AuditEntry) *Audit { return &Audit{entry: e} }

type auditKey struct{}

// WithAudit returns ctx carrying a: the store records a with the first
// change made with ctx.
func WithAudit(ctx context.Context, a *Audit) context.Context {
	return context.WithValue(ctx, auditKey{}, a)
}

// Written returns the entry as written (Seq and At set), or false when no
// change has been made with it.
func (a *Audit) Written() (AuditEntry, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.entry, a.written
}

// Close ends a: changes made with its context afterwards (a goroutine the
// change started) are no longer recorded in it.
func (a *Audit) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
}

// pendingAudit returns ctx's audit entry when a change made with ctx must
// still write it, locked until the change is committed or abandoned
// (unlock, with whether the entry was written); nil when there is none.
// The lock is taken before the change's transaction begins, so that two
// changes made at once with the same context write the entry once.
func pendingAudit(ctx context.Context) *Audit {
	a, _ := ctx.Value(auditKey{}).(*Audit)
	if a == nil {
		return nil
	}
	a.mu.Lock()
	if a.written || a.closed {
		a.mu.Unlock()
		return nil
	}
	return a
}

// auditPending reports whether a change made with ctx must write an audit
// entry (without locking it: tx decides again).
func auditPending(ctx context.Context) bool {
	a, _ := ctx.Value(auditKey{}).(*Audit)
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.written && !a.closed
}

// write runs a change of one statement (or several that need no
// transaction of their own) with s.w, or, when ctx carries an audit entry
// to write, in a transaction that writes the entry too.
func (s *sqlStore) write(ctx context.Context, fn func(q querier) error) error {
	if !auditPending(ctx) {
		return fn(s.w)
	}
	return s.tx(ctx, func(tx *sql.Tx) error { return fn(tx) })
}

// checkAudit validates an entry to record.
func checkAudit(e AuditEntry) error {
	if e.Actor == "" || e.Kind == "" {
		return fmt.Errorf("%w: actor and kind are required", ErrInvalid)
	}
	return nil
}

// insertAudit records e with q, setting Seq and At.
func (s *sqlStore) insertAudit(ctx context.Context, q querier, e AuditEntry) (AuditEntry, error) {
	if err := checkAudit(e); err != nil {
		return AuditEntry{}, err
	}
	e.At = s.now()
	err := q.QueryRowContext(ctx, s.q(`INSERT INTO audit_log (at, actor, kind, target, summary, before_doc, after_doc)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
		s.t(e.At), e.Actor, e.Kind, e.Target, e.Summary, nullStr(e.Before), nullStr(e.After)).Scan(&e.Seq)
	if err != nil {
		return AuditEntry{}, err
	}
	return e, nil
}

// AmendAudit implements Accounts.
func (s *sqlStore) AmendAudit(ctx context.Context, e AuditEntry) error {
	op := fmt.Sprintf("amend audit entry %d", e.Seq)
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE audit_log SET target = ?, summary = ?, before_doc = ?, after_doc = ?
		WHERE seq = ?`), e.Target, e.Summary, nullStr(e.Before), nullStr(e.After), e.Seq)
	if err == nil {
		err = affected(res)
	}
	if err != nil {
		return fail(op, err)
	}
	return nil
}
