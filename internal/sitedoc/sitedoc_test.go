package sitedoc

import (
	"encoding/json"
	"testing"
)

// TestShapes pins the JSON of the documents to docs/site-repository.md:
// a renamed field would break every endpoint installed before the change.
func TestShapes(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  any
		want string
	}{
		{"deployment", Deployment{Components: map[string]string{"pattern": "17.735.00"}}, `{"components":{"pattern":"17.735.00"}}`},
		{"domain", DomainSettings{Settings: json.RawMessage(`{"scan":"daily"}`), Programs: map[string]string{"agent": "5.0"}},
			`{"settings":{"scan":"daily"},"programs":{"agent":"5.0"}}`},
		{"domainNoSettings", DomainSettings{Programs: map[string]string{}}, `{"programs":{}}`},
	} {
		b, err := json.Marshal(c.doc)
		if err != nil || string(b) != c.want {
			t.Errorf("%s: %s, %v; want %s", c.name, b, err, c.want)
		}
	}
	if got := DomainItem("berlin"); got != "domain.berlin" {
		t.Errorf("DomainItem(berlin) = %q", got)
	}
}
