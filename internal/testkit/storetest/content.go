package storetest

import (
	"fmt"
	"sort"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

func testPolicies(e *env) {
	_, err := e.st.CurrentPolicy(e.ctx)
	e.is(err, store.ErrNotFound)
	_, err = e.st.PutPolicy(e.ctx, " \n", "alice", store.AnyVersion)
	e.is(err, store.ErrInvalid)
	_, err = e.st.PutPolicy(e.ctx, "origin: x\n", "alice", 1)
	e.is(err, store.ErrConflict)

	v1, err := e.st.PutPolicy(e.ctx, "origin: https://a/\n", "alice", 0)
	e.must(err)
	e.equal("first policy", v1, store.PolicyVersion{Version: 1, Document: "origin: https://a/\n", Author: "alice", Created: e.now()})
	e.clock.Advance(time.Minute)
	v2, err := e.st.PutPolicy(e.ctx, "origin: https://b/\n", "bob", 1)
	e.must(err)
	e.equal("second version", v2.Version, int64(2))
	_, err = e.st.PutPolicy(e.ctx, "origin: https://c/\n", "carol", 1)
	e.is(err, store.ErrConflict)
	v3, err := e.st.PutPolicy(e.ctx, "origin: https://d/\n", "dave", store.AnyVersion)
	e.must(err)

	cur, err := e.st.CurrentPolicy(e.ctx)
	e.must(err)
	e.equal("current policy", cur, v3)
	got, err := e.st.Policy(e.ctx, 1)
	e.must(err)
	e.equal("policy version 1", got, v1)
	_, err = e.st.Policy(e.ctx, 4)
	e.is(err, store.ErrNotFound)
	list, err := e.st.ListPolicies(e.ctx, 0)
	e.must(err)
	e.equal("policies", list, []store.PolicyVersion{v3, v2, v1})
	list, err = e.st.ListPolicies(e.ctx, 2)
	e.must(err)
	e.equal("latest two policies", list, []store.PolicyVersion{v3, v2})
}

// testPoliciesConcurrent: concurrent unconditional writers all succeed
// with distinct versions; of concurrent conditional writers on the same
// version exactly one does.
func testPoliciesConcurrent(e *env) {
	versions := make([]int64, 8)
	errs := parallel(8, func(i int) error {
		p, err := e.st.PutPolicy(e.ctx, fmt.Sprintf("# writer %d\n", i), "w", store.AnyVersion)
		versions[i] = p.Version
		return err
	})
	for _, err := range errs {
		e.must(err)
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	e.equal("versions", versions, []int64{1, 2, 3, 4, 5, 6, 7, 8})
	errs = parallel(8, func(i int) error {
		_, err := e.st.PutPolicy(e.ctx, fmt.Sprintf("# conditional writer %d\n", i), "w", 8)
		return err
	})
	if ok, conflicts := e.count(errs, store.ErrConflict); ok != 1 || conflicts != 7 {
		e.t.Fatalf("%d conditional writers on one version succeeded, %d conflicted", ok, conflicts)
	}
}

func testPrograms(e *env) {
	e.domain("a")
	e.domain("b")
	_, err := e.st.ApproveProgram(e.ctx, store.ProgramApproval{Domain: "nowhere", Program: "agent", Version: "1"})
	e.is(err, store.ErrNotFound)
	_, err = e.st.ApproveProgram(e.ctx, store.ProgramApproval{Domain: "a", Program: "agent"})
	e.is(err, store.ErrInvalid)

	a1, err := e.st.ApproveProgram(e.ctx, store.ProgramApproval{Domain: "a", Program: "scanner", Version: "1.0"})
	e.must(err)
	e.equal("approval", a1, store.ProgramApproval{Domain: "a", Program: "scanner", Version: "1.0", Approved: e.now()})
	e.clock.Advance(time.Minute)
	a2, err := e.st.ApproveProgram(e.ctx, store.ProgramApproval{Domain: "a", Program: "scanner", Version: "1.1"})
	e.must(err)
	a3, err := e.st.ApproveProgram(e.ctx, store.ProgramApproval{Domain: "a", Program: "agent", Version: "7"})
	e.must(err)
	b1, err := e.st.ApproveProgram(e.ctx, store.ProgramApproval{Domain: "b", Program: "scanner", Version: "0.9"})
	e.must(err)

	list, err := e.st.ProgramApprovals(e.ctx, "a")
	e.must(err)
	e.equal("approvals of a", list, []store.ProgramApproval{a3, a2})
	list, err = e.st.ProgramApprovals(e.ctx, "")
	e.must(err)
	e.equal("all approvals", list, []store.ProgramApproval{a3, a2, b1})

	e.must(e.st.WithdrawProgramApproval(e.ctx, "a", "scanner"))
	e.is(e.st.WithdrawProgramApproval(e.ctx, "a", "scanner"), store.ErrNotFound)
	list, err = e.st.ProgramApprovals(e.ctx, "a")
	e.must(err)
	e.equal("approvals of a after a withdrawal", list, []store.ProgramApproval{a3})
}

func testComponents(e *env) {
	_, err := e.st.ComponentState(e.ctx, "pattern")
	e.is(err, store.ErrNotFound)
	_, err = e.st.RecordComponentSync(e.ctx, "pattern", "")
	e.is(err, store.ErrInvalid)
	_, err = e.st.HoldComponent(e.ctx, "pattern", true)
	e.is(err, store.ErrNotFound)
	_, err = e.st.DeployComponent(e.ctx, "pattern", "1")
	e.is(err, store.ErrNotFound)

	t1 := e.now()
	c, err := e.st.RecordComponentSync(e.ctx, "pattern", "1")
	e.must(err)
	e.equal("first sync deploys", c, store.ComponentState{Name: "pattern", Latest: "1", Synced: t1, Deployed: "1", DeployedAt: t1})

	e.clock.Advance(time.Minute)
	c, err = e.st.HoldComponent(e.ctx, "pattern", true)
	e.must(err)
	e.equal("held", c, store.ComponentState{Name: "pattern", Latest: "1", Synced: t1, Deployed: "1", DeployedAt: t1, Held: true})
	e.clock.Advance(time.Minute)
	t3 := e.now()
	c, err = e.st.RecordComponentSync(e.ctx, "pattern", "2")
	e.must(err)
	e.equal("sync while held", c, store.ComponentState{Name: "pattern", Latest: "2", Synced: t3, Deployed: "1", DeployedAt: t1, Held: true})

	e.clock.Advance(time.Minute)
	t4 := e.now()
	c, err = e.st.HoldComponent(e.ctx, "pattern", false)
	e.must(err)
	e.equal("released", c, store.ComponentState{Name: "pattern", Latest: "2", Synced: t3, Deployed: "2", DeployedAt: t4})
	got, err := e.st.ComponentState(e.ctx, "pattern")
	e.must(err)
	e.equal("stored state", got, c)

	e.clock.Advance(time.Minute)
	c, err = e.st.RecordComponentSync(e.ctx, "pattern", "2")
	e.must(err)
	e.equal("a sync of the deployed version keeps its deployment time", c.DeployedAt, t4)

	e.clock.Advance(time.Minute)
	t6 := e.now()
	c, err = e.st.DeployComponent(e.ctx, "pattern", "1")
	e.must(err)
	e.equal("rolled back", [2]any{c.Deployed, c.DeployedAt}, [2]any{"1", t6})
	_, err = e.st.DeployComponent(e.ctx, "pattern", "")
	e.is(err, store.ErrInvalid)

	engine, err := e.st.RecordComponentSync(e.ctx, "engine", "9")
	e.must(err)
	list, err := e.st.ListComponents(e.ctx)
	e.must(err)
	e.equal("components", list, []store.ComponentState{engine, c})
}
