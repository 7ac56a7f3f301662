package main

import (
	"context"
	"fmt"
)

// measureWhatIf times the what-if of the policy tools (internal/whatif)
// over 100,000 endpoints against the bare plan.For loop over the same
// endpoints.
func measureWhatIf(ctx context.Context, s *suite) (string, error) {
	r, cmd, err := goBench(ctx, s, "./internal/whatif/", "PlanForLoop|WhatIf", s.benchtime("3x", "1x"))
	if err != nil {
		return "", err
	}
	m, err := metrics(r, [2]string{"BenchmarkPlanForLoop", "ns/op"}, [2]string{"BenchmarkPlanForLoop", "allocs/op"},
		[2]string{"BenchmarkWhatIf", "ns/op"}, [2]string{"BenchmarkWhatIf", "allocs/op"}, [2]string{"BenchmarkWhatIf", "plans"})
	if err != nil {
		return "", err
	}
	return "A what-if (`POST /api/v1/policy/whatif`, `internal/whatif.Run`) over 100,000 enrolled endpoints and a 1024-entry " +
		"list (1000 sites of a /24 with their own update agent, 20 mirrors, 2 IPv6 prefixes, the origin and a CDN; 30% of the " +
		"endpoints dual-stack, half of them behind on one component), with 100 agents, two mirrors and the origin down: where " +
		"every endpoint ends per category, the groups and the bytes. Baseline: `plan.For` for each of the same endpoints, " +
		"nothing else, same run. Run computes one plan per group of endpoints whose addresses fall into the same intervals " +
		"between the list's range boundaries (" + fmt.Sprintf("%.0f", m[4]) + " plans here instead of 100,000). Not included: " +
		"reading the registry from the database and encoding the answer, which the server adds:\n\n" + code(cmd) + "\n" +
		table([]string{"benchmark", "time/op (100,000 endpoints)", "allocs/op", "ratio"},
			[]string{"`plan.For` per endpoint (baseline)", dur(m[0]), fmt.Sprintf("%.0f", m[1]), "1.00"},
			[]string{"what-if", dur(m[2]), fmt.Sprintf("%.0f", m[3]), ratio(m[2], m[0])}), nil
}
