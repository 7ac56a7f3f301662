package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
)

func TestFinish(t *testing.T) {
	tests := []struct {
		results []Result
		want    Result
	}{
		{nil, UpToDate},
		{[]Result{UpToDate, UpToDate}, UpToDate},
		{[]Result{UpToDate, Updated}, Updated},
		{[]Result{Failed, Updated}, Failed},
		{[]Result{Updated, Failed, UpToDate}, Failed},
	}
	for _, tt := range tests {
		r := &Report{}
		for _, res := range tt.results {
			r.Categories = append(r.Categories, &Category{Result: res})
		}
		r.Finish(time.Unix(5, 0))
		if r.Result != tt.want {
			t.Errorf("%v: result %s, want %s", tt.results, r.Result, tt.want)
		}
	}
}

func TestStoreKeepsLastN(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Last(); r != nil || err != nil {
		t.Fatalf("empty store Last = %v, %v", r, err)
	}
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		r := &Report{ID: fmt.Sprintf("run%d", i), Started: base.Add(time.Duration(i) * time.Minute),
			Categories: []*Category{{Category: category.Components, Result: Failed,
				Attempts: []Attempt{{Source: "agent:a", Class: failure.Unreachable, Error: "refused"}}}}}
		r.Finish(r.Started.Add(time.Second))
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range list {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "run2,run3,run4" {
		t.Fatalf("kept %v, want run2,run3,run4", ids)
	}
	last, err := s.Last()
	if err != nil || last.ID != "run4" || last.Categories[0].Attempts[0].Class != failure.Unreachable {
		t.Fatalf("Last = %+v, %v", last, err)
	}
}

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := &Report{ID: "x", Categories: []*Category{{Category: category.Programs, Result: Failed,
		Attempts: []Attempt{{Source: "server", Class: failure.HTTPError, Error: "503"}}}}}
	r.Finish(time.Now())
	r.Log(l)
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 || lines[0]["level"] != "WARN" || lines[1]["class"] != "http_error" || lines[2]["result"] != "failed" {
		t.Fatalf("log lines: %v", lines)
	}
}

func TestValidate(t *testing.T) {
	good := func() *Report {
		return &Report{Trigger: "scheduled", Role: "client", Result: Updated, Categories: []*Category{
			{Category: category.Components, Result: Updated, Bytes: 10},
			{Category: category.DomainSettings, Result: Skipped}}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("a good report: %v", err)
	}
	// The endpoint's report of a run that could not start has no role.
	if err := (&Report{Trigger: "manual", Result: Failed}).Validate(); err != nil {
		t.Fatalf("a report without role: %v", err)
	}
	for name, spoil := range map[string]func(r *Report){
		"trigger":        func(r *Report) { r.Trigger = "whenever" },
		"role":           func(r *Report) { r.Role = "boss" },
		"result":         func(r *Report) { r.Result = "" },
		"nullCategory":   func(r *Report) { r.Categories = append(r.Categories, nil) },
		"category":       func(r *Report) { r.Categories[0].Category = "kernels" },
		"repeated":       func(r *Report) { r.Categories[1].Category = category.Components },
		"categoryResult": func(r *Report) { r.Categories[0].Result = "fine" },
		"bytes":          func(r *Report) { r.Categories[0].Bytes = -1 },
	} {
		r := good()
		spoil(r)
		err := r.Validate()
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a one-line error", name, err)
		}
	}
}
