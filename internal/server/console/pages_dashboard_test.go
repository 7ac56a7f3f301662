package console

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cascade-update/cascade/internal/server/api"
)

// TestDashboardPrograms: every program mirrored or approved somewhere has
// a row, by name, with the newest version mirrored and the approvals of
// each domain; programs and approvals beyond the limit are counted, not
// listed.
func TestDashboardPrograms(t *testing.T) {
	progs := []ContentProgram{{Name: "b-core", Mirrored: []string{"2.1", "2.0"}}, {Name: "a-fix", Mirrored: []string{"1.0"}}, {Name: "empty"}}
	var approvals []api.Approval
	for i := range 4 {
		approvals = append(approvals, api.Approval{Domain: fmt.Sprintf("d%d", i), Program: "b-core", Version: "2.0"})
	}
	approvals = append(approvals, api.Approval{Domain: "d0", Program: "gone", Version: "0.9"})
	got, more := dashboardPrograms(progs, approvals, 3)
	want := []dashboardProgram{
		{Name: "a-fix", Newest: "1.0"},
		{Name: "b-core", Newest: "2.1", Approved: approvals[:3], MoreApproved: 1},
		{Name: "empty"},
	}
	if !reflect.DeepEqual(got, want) || more != 1 {
		t.Fatalf("rows %+v, %d more; want %+v, 1 more (the approved program no longer mirrored)", got, more, want)
	}
	got, more = dashboardPrograms(progs, approvals, 10)
	if len(got) != 4 || more != 0 || got[3].Name != "gone" || got[3].Newest != "" || len(got[3].Approved) != 1 {
		t.Fatalf("rows %+v, %d more", got, more)
	}
}
