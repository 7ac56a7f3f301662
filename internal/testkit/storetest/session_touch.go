package storetest

import (
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// testSessionTouchCoarse: TouchSession writes LastSeen only when it is a
// minute old or more, so that page views within a minute only read.
func testSessionTouchCoarse(e *env) {
	a, err := e.st.CreateAccount(e.ctx, store.Account{Name: "alice", Role: store.AccountAdmin, PasswordHash: "h"})
	e.must(err)
	h := e.secretHash()
	s, err := e.st.CreateSession(e.ctx, store.Session{Hash: h, AccountID: a.ID})
	e.must(err)
	e.clock.Advance(59 * time.Second)
	got, _, err := e.st.TouchSession(e.ctx, h, time.Hour, 8*time.Hour)
	e.must(err)
	e.equal("LastSeen touched within the minute", got.LastSeen, s.LastSeen)
	e.clock.Advance(time.Second)
	got, _, err = e.st.TouchSession(e.ctx, h, time.Hour, 8*time.Hour)
	e.must(err)
	e.equal("LastSeen touched a minute later", got.LastSeen, e.now())
	e.clock.Advance(30 * time.Second)
	got, _, err = e.st.TouchSession(e.ctx, h, time.Hour, 8*time.Hour)
	e.must(err)
	e.equal("LastSeen as stored", got.LastSeen, e.now().Add(-30*time.Second))
}
