// Package policy is the update-source policy (docs/policy.md): the
// Customized Update Source List and its options, as edited on the server,
// delivered to endpoints as a signed document, and loaded from YAML files.
//
// Decoding is strict: unknown fields are errors, and Parse validates
// everything, reporting each problem as one line that names the entry by
// its 1-based number in custom_sources.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/strictyaml"
)

// MaxSources is the capacity of the Customized Update Source List (the source document:
// "which can accommodate up to 1024 update sources").
const MaxSources = 1024

// MaxSize caps the size of a policy document (1024 entries of long URLs fit
// comfortably).
const MaxSize = 4 << 20

// Mode selects an endpoint's update source: the standard source (the
// server) or the Customized Update Source List.
type Mode string

// The update-source modes.
const (
	Standard   Mode = "standard"
	Customized Mode = "customized"
)

// Policy is a validated update-source policy. Build one with Parse or Load;
// a Policy built by hand must pass Validate before use.
type Policy struct {
	// Origin is the vendor's origin (the ActiveUpdate server). Required.
	Origin string `yaml:"origin" json:"origin"`
	// Server is the management server, the standard update source. Required.
	Server string `yaml:"server" json:"server"`
	// DownloadFromOrigin is the privilege "Clients download updates from
	// the ActiveUpdate server". Default false.
	DownloadFromOrigin bool `yaml:"download_from_origin" json:"download_from_origin"`
	// Clients holds the settings of endpoints that are not update agents.
	Clients Clients `yaml:"clients" json:"clients"`
	// Agents holds the settings of update agents.
	Agents Agents `yaml:"agents" json:"agents"`
	// FallbackToServer holds, per category, "Update X from the server if
	// all customized sources are not available or not found". Each defaults
	// to true, so that an endpoint can always reach its standard source.
	FallbackToServer Fallback `yaml:"fallback_to_server" json:"fallback_to_server"`
	// CustomSources is the Customized Update Source List: at most 1024
	// entries, walked in order.
	CustomSources []Entry `yaml:"custom_sources" json:"custom_sources"`
}

// Clients are the settings of ordinary endpoints.
type Clients struct {
	// Source is standard (the server; the default) or customized.
	Source Mode `yaml:"source" json:"source"`
}

// Agents are the settings of update agents.
type Agents struct {
	// Source is standard (the server; the default) or customized.
	Source Mode `yaml:"source" json:"source"`
	// OnlyFromServer: "Update Agents update components, domain settings,
	// and client programs and hot fixes, only from the OfficeScan server".
	OnlyFromServer bool `yaml:"only_from_server" json:"only_from_server"`
	// AlwaysFromStandardSource: "Update agent: always update from standard
	// update source (OfficeScan server)" when notified of new components.
	AlwaysFromStandardSource bool `yaml:"always_from_standard_source" json:"always_from_standard_source"`
}

// Fallback says, per category, whether endpoints fall back to the server
// when every customized source failed.
type Fallback struct {
	Components     bool `yaml:"components" json:"components"`
	DomainSettings bool `yaml:"domain_settings" json:"domain_settings"`
	Programs       bool `yaml:"programs" json:"programs"`
}

// For returns the fallback setting of category c.
func (f Fallback) For(c category.Category) bool {
	switch c {
	case category.Components:
		return f.Components
	case category.DomainSettings:
		return f.DomainSettings
	case category.Programs:
		return f.Programs
	}
	return false
}

// Entry is one line of the Customized Update Source List.
type Entry struct {
	// Addresses is an IPv4 range "a.b.c.d-e.f.g.h", a single address, a
	// CIDR, or an IPv6 prefix or range.
	Addresses string `yaml:"addresses" json:"addresses"`
	// Source is "agent:ID" or an absolute http(s) URL of a mirror. A URL
	// equal to Origin is the origin.
	Source string `yaml:"source" json:"source"`

	rng Range
	src Source
	key string
}

// Range returns the entry's parsed addresses.
func (e Entry) Range() Range { return e.rng }

// Src returns the entry's parsed source; a URL equal to the policy's
// origin has Kind Origin.
func (e Entry) Src() Source { return e.src }

// Key identifies the entry's source for de-duplication: two entries with
// the same Key name the same source.
func (e Entry) Key() string { return e.key }

func sourceKey(src Source) string {
	switch src.Kind {
	case URL:
		n, _ := normalURL(src.URL)
		return "url:" + n
	case Agent:
		return "agent:" + src.AgentID
	}
	return string(src.Kind)
}

// document mirrors Policy for decoding, with pointers where an absent
// field takes a default other than the zero value.
type document struct {
	Origin             string `yaml:"origin"`
	Server             string `yaml:"server"`
	DownloadFromOrigin bool   `yaml:"download_from_origin"`
	Clients            struct {
		Source Mode `yaml:"source"`
	} `yaml:"clients"`
	Agents           Agents `yaml:"agents"`
	FallbackToServer struct {
		Components     *bool `yaml:"components"`
		DomainSettings *bool `yaml:"domain_settings"`
		Programs       *bool `yaml:"programs"`
	} `yaml:"fallback_to_server"`
	CustomSources []Entry `yaml:"custom_sources"`
}

// Load reads and validates the policy file at path.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// Parse decodes and validates a policy document. Errors are one line; a
// *ValidationError lists every problem found.
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("policy is larger than %d bytes", MaxSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("policy is empty")
	}
	var doc document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, yamlError(err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("policy must be a single YAML document")
	}
	p := &Policy{
		Origin:             doc.Origin,
		Server:             doc.Server,
		DownloadFromOrigin: doc.DownloadFromOrigin,
		Clients:            Clients{Source: doc.Clients.Source},
		Agents:             doc.Agents,
		FallbackToServer: Fallback{
			Components:     orTrue(doc.FallbackToServer.Components),
			DomainSettings: orTrue(doc.FallbackToServer.DomainSettings),
			Programs:       orTrue(doc.FallbackToServer.Programs),
		},
		CustomSources: doc.CustomSources,
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func orTrue(b *bool) bool { return b == nil || *b }

// yamlError turns a yaml.v3 decoding error into a *ValidationError with
// one line per problem, in the policy's terms (strictyaml.Problems).
func yamlError(err error) error {
	return &ValidationError{Problems: strictyaml.Problems(err, document{})}
}
