package whatif

import (
	"net/netip"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
)

// Step is one source of an explained plan: the content of a step of
// `cascade explain --json`, with the entry it comes from.
type Step struct {
	Source string `json:"source"`
	Entry  int    `json:"entry,omitempty"`
	Why    string `json:"why"`
}

// Explained is a plan as `cascade explain --json` shows it, with the rule
// that decided it and the notes of the text form.
type Explained struct {
	Role       plan.Role                    `json:"role"`
	Trigger    plan.Trigger                 `json:"trigger"`
	Rule       string                       `json:"rule"`
	Categories map[category.Category][]Step `json:"categories"`
	Notes      []string                     `json:"notes,omitempty"`
}

// Explain returns pl in its explained form.
func Explain(pl plan.Plan) Explained {
	out := Explained{Role: pl.Role, Trigger: pl.Trigger, Rule: pl.Rule, Categories: map[category.Category][]Step{}, Notes: pl.Notes}
	for c, steps := range pl.Categories {
		list := make([]Step, 0, len(steps))
		for _, s := range steps {
			list = append(list, Step{Source: s.Source.String(), Entry: s.Entry, Why: s.Why})
		}
		out.Categories[c] = list
	}
	return out
}

// Target is what a preview is for: an endpoint (role and agent id from
// the registry) or addresses with a role.
type Target struct {
	Role      plan.Role
	AgentID   string
	Addresses []netip.Addr
}

// Comparison is a target's plan under the policy in force beside its plan
// under an edited one.
type Comparison struct {
	Current Explained `json:"current,omitzero"`
	Edited  Explained `json:"edited,omitzero"`
	// Changed lists, per category that differs, where.
	Changed []Change `json:"changed,omitzero"`
}

// Change says how a category's sources differ between the two plans.
type Change struct {
	Category category.Category `json:"category"`
	// Positions are the 1-based positions whose source differs (a
	// position one plan lacks counts).
	Positions []int `json:"positions"`
	// Current and Edited are the category's sources, in order.
	Current []string `json:"current"`
	Edited  []string `json:"edited"`
}

// Compare returns the plans of tgt under current and edited (both
// validated) for trigger t. A current of nil (no policy in force yet)
// compares against an empty plan.
func Compare(current, edited *policy.Policy, tgt Target, t plan.Trigger) Comparison {
	ep := plan.Endpoint{Role: tgt.Role, AgentID: tgt.AgentID, Addresses: tgt.Addresses}
	var cmp Comparison
	if current != nil {
		cmp.Current = Explain(plan.For(current, ep, t))
	} else {
		cmp.Current = Explained{Role: tgt.Role, Trigger: t, Categories: map[category.Category][]Step{}}
	}
	cmp.Edited = Explain(plan.For(edited, ep, t))
	cmp.Changed = []Change{}
	for _, c := range category.All {
		a, b := sources(cmp.Current.Categories[c]), sources(cmp.Edited.Categories[c])
		_, inA := cmp.Current.Categories[c]
		_, inB := cmp.Edited.Categories[c]
		ch := Change{Category: c, Positions: []int{}, Current: a, Edited: b}
		for i := range max(len(a), len(b)) {
			if i >= len(a) || i >= len(b) || a[i] != b[i] {
				ch.Positions = append(ch.Positions, i+1)
			}
		}
		if len(ch.Positions) > 0 || inA != inB {
			cmp.Changed = append(cmp.Changed, ch)
		}
	}
	return cmp
}

func sources(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Source
	}
	return out
}
