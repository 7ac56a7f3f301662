package api

import "time"

// AuditEntry is one recorded change (GET /api/v1/audit).
type AuditEntry struct {
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Kind    string    `json:"kind"`
	Target  string    `json:"target,omitempty"`
	Summary string    `json:"summary"`
	Before  string    `json:"before,omitempty"`
	After   string    `json:"after,omitempty"`
}

// AuditPage is a page of the audit log, newest first. NextBefore, when
// set, is the before= parameter of the next (older) page.
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextBefore int64        `json:"next_before,omitempty"`
}
