// Package storetest is the conformance suite of store.Store: every
// implementation (SQLite and PostgreSQL today) must pass Run, which checks
// each method against the contract written in its doc comment.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

// Opener returns a new, empty Store whose Options.Clock is clock, and
// registers its cleanup with t.
type Opener func(t testing.TB, clock func() time.Time) store.Store

// start is where every test's clock begins. Its nanoseconds check that the
// store truncates to microseconds.
var start = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

// env is one test's store and clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	clock *testkit.Clock
}

// now returns the clock's time as the store keeps it.
func (e *env) now() time.Time { return e.clock.Now().UTC().Truncate(time.Microsecond) }

// Run runs the suite, each test in a parallel subtest on a Store of its
// own from open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"AdminTokens", testAdminTokens},
		{"EnrollmentTokens", testEnrollmentTokens},
		{"EnrollmentTokensInvalid", testEnrollmentTokensInvalid},
		{"RedeemConcurrent", testRedeemConcurrent},
		{"Enroll", testEnroll},
		{"EnrollAgents", testEnrollAgents},
		{"EnrollAgentConflict", testEnrollAgentConflict},
		{"Domains", testDomains},
		{"DomainSettings", testDomainSettings},
		{"Endpoints", testEndpoints},
		{"EndpointsInvalid", testEndpointsInvalid},
		{"EndpointStatus", testEndpointStatus},
		{"EndpointRoles", testEndpointRoles},
		{"EndpointRevoke", testEndpointRevoke},
		{"ListEndpoints", testListEndpoints},
		{"Reports", testReports},
		{"LastReport", testLastReport},
		{"ReportsAllOrNothing", testReportsAllOrNothing},
		{"ListReports", testListReports},
		{"LastReports", testLastReports},
		{"PruneReports", testPruneReports},
		{"ReportsBulk", testReportsBulk},
		{"Policies", testPolicies},
		{"PoliciesConcurrent", testPoliciesConcurrent},
		{"Programs", testPrograms},
		{"Components", testComponents},
		{"Notifications", testNotifications},
		{"NotificationsRefused", testNotificationsRefused},
		{"DomainNotifications", testDomainNotifications},
		{"PendingNotificationsOf", testPendingNotificationsOf},
		{"PendingEndpoints", testPendingEndpoints},
		{"ReleaseClientsIf", testReleaseClientsIf},
		{"ReleaseClientsOnce", testReleaseClientsOnce},
		{"DeliveredAfter", testDeliveredAfter},
		{"BeatHub", testBeatHub},
		{"NotificationsOrder", testNotificationsOrder},
		{"NotificationStates", testNotificationStates},
		{"MarkDelivered", testMarkDelivered},
		{"NotificationsRevoke", testNotificationsRevoke},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Cancelled", testCancelled},
		{"Accounts", testAccounts},
		{"Sessions", testSessions},
		{"Audit", testAudit},
		{"AuditAtomic", testAuditAtomic},
		{"AuditAmend", testAuditAmend},
		{"CreateEndpoints", testCreateEndpoints},
		{"QueryManyIDs", testQueryManyIDs},
		{"SessionTouchCoarse", testSessionTouchCoarse},
		{"QueryEndpoints", testQueryEndpoints},
		{"QueryEndpointsAddresses", testQueryEndpointsAddresses},
		{"CountEndpointsInRanges", testCountEndpointsInRanges},
		{"QueryEndpointsSearch", testQueryEndpointsSearch},
		{"AccountChanges", testAccountChanges},
		{"LastAdminConcurrent", testLastAdminConcurrent},
		{"Syncs", testSyncs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := testkit.NewClock(start)
			e := &env{t: t, ctx: context.Background(), st: open(t, clock.Now), clock: clock}
			tc.fn(e)
		})
	}
}

// must fails the test on err.
func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// is fails the test unless err wraps target and says so in the store's
// words (ownWords).
func (e *env) is(err, target error) {
	e.t.Helper()
	if !errors.Is(err, target) {
		e.t.Fatalf("got error %v, want %v", err, target)
	}
	ownWords(e.t, err)
}

// driverWords are phrases of SQLite's and PostgreSQL's error messages.
var driverWords = regexp.MustCompile(`(?i)constraint failed|constraint "|violates|duplicate key|\(SQLSTATE|` +
	`ERROR: |\(\d{1,5}\)$|failed to connect|readonly database|no such (table|column)`)

// ownWords fails the test when err's text carries a database driver's
// message: what a client may see is in the store's words.
func ownWords(t testing.TB, err error) {
	t.Helper()
	if err != nil && driverWords.MatchString(err.Error()) {
		t.Fatalf("error %q carries the database driver's message", err)
	}
}

// conflict fails the test unless err is a *store.ConflictError (wrapping
// ErrConflict) for key with value, held by the endpoint holder (when not
// nil).
func (e *env) conflict(err error, key, value string, holder *store.Endpoint) {
	e.t.Helper()
	e.is(err, store.ErrConflict)
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		e.t.Fatalf("error %v is not a *store.ConflictError", err)
	}
	want := store.ConflictError{Key: key, Value: value}
	if holder != nil {
		want.Holder = fmt.Sprintf("endpoint %s (%s)", holder.Hostname, holder.ID)
	}
	if got := (store.ConflictError{Key: ce.Key, Value: ce.Value, Holder: ce.Holder}); got != want {
		e.t.Fatalf("conflict %+v, want %+v", got, want)
	}
	if !strings.HasSuffix(err.Error(), want.Error()) {
		e.t.Fatalf("error %q does not end in %q", err, want.Error())
	}
}

// equal fails the test unless got and want are deeply equal.
func (e *env) equal(what string, got, want any) {
	e.t.Helper()
	if !reflect.DeepEqual(got, want) {
		e.t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// domain creates a domain.
func (e *env) domain(name string) store.Domain {
	e.t.Helper()
	d, err := e.st.CreateDomain(e.ctx, name)
	e.must(err)
	return d
}

// endpoint creates an endpoint in domain; agentID "" makes a client.
func (e *env) endpoint(domain, hostname, agentID string, addrs ...string) store.Endpoint {
	e.t.Helper()
	role := store.RoleClient
	if agentID != "" {
		role = store.RoleAgent
	}
	ep, err := e.st.CreateEndpoint(e.ctx, store.Endpoint{
		Hostname: hostname, Domain: domain, Role: role, AgentID: agentID, Addresses: addrs,
		CredentialHash: store.HashSecret("credential of " + hostname),
	})
	e.must(err)
	return ep
}

// secretHash returns the hash of a fresh secret.
func (e *env) secretHash() store.Hash {
	e.t.Helper()
	_, h, err := store.NewSecret("test_")
	e.must(err)
	return h
}

// parallel runs fn(i) for i in [0, n) in n goroutines released together,
// and returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			errs[i] = fn(i)
		}()
	}
	close(gate)
	wg.Wait()
	return errs
}

// count returns how many errs are nil and how many wrap target; any other
// error fails the test.
func (e *env) count(errs []error, target error) (ok, matched int) {
	e.t.Helper()
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, target):
			matched++
		default:
			e.t.Fatalf("unexpected error: %v", err)
		}
	}
	return ok, matched
}

func testCancelled(e *env) {
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := e.st.CreateDomain(ctx, "d"); !errors.Is(err, context.Canceled) {
		e.t.Fatalf("CreateDomain with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := e.st.ListDomains(ctx); !errors.Is(err, context.Canceled) {
		e.t.Fatalf("ListDomains with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := e.st.Domain(e.ctx, "d"); !errors.Is(err, store.ErrNotFound) {
		e.t.Fatalf("a cancelled CreateDomain stored the domain: %v", err)
	}
}

// testConcurrentWriters runs many writers at once: none may fail (on
// SQLite, none may see SQLITE_BUSY).
func testConcurrentWriters(e *env) {
	e.domain("d")
	eps := make([]store.Endpoint, 8)
	for i := range eps {
		eps[i] = e.endpoint("d", fmt.Sprintf("h%d", i), "")
	}
	errs := parallel(32, func(i int) error {
		ep := eps[i%len(eps)]
		for j := range 10 {
			addr := fmt.Sprintf("10.0.%d.%d", i, j)
			if _, err := e.st.UpdateEndpointStatus(e.ctx, ep.ID, store.StatusUpdate{Addresses: []string{addr}}); err != nil {
				return err
			}
			if err := e.st.AddReports(e.ctx, []store.Report{{EndpointID: ep.ID, Trigger: "scheduled", Result: "ok"}}); err != nil {
				return err
			}
			if _, err := e.st.ListEndpoints(e.ctx, store.EndpointFilter{Domain: "d"}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		e.must(err)
	}
	got, err := e.st.ListReports(e.ctx, store.ReportFilter{})
	e.must(err)
	e.equal("reports stored", len(got), 32*10)
}
