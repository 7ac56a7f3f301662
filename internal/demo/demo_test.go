package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDemo runs the demonstration with one client per agent and checks
// the story it tells: clients through their agents, then the stopped
// agent's client through the server after it was found unreachable.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Out: &out, ClientsPerAgent: 1, Dir: t.TempDir()}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	first, second, ok := strings.Cut(text, "\n2. ")
	if !ok {
		t.Fatalf("no second round:\n%s", text)
	}
	for _, want := range []string{"client-berlin-1", "agent:ua-berlin-1", "client-paris-1", "agent:ua-paris-1"} {
		if !strings.Contains(first, want) {
			t.Errorf("first round lacks %q:\n%s", want, first)
		}
	}
	var paris string
	for _, line := range strings.Split(second, "\n") {
		if strings.Contains(line, "client-paris-1") {
			paris = line
		}
	}
	if !strings.Contains(paris, "17.736.00") || !strings.Contains(paris, "server") || !strings.Contains(paris, "agent:ua-paris-1 unreachable") {
		t.Errorf("the stopped agent's client did not fail over to the server: %q\n%s", paris, text)
	}
}
