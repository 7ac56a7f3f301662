// Package sitedoc is the format of the site repository's documents: the
// domain_settings items and files that the management server publishes
// (internal/server) and that endpoints install and read (internal/update,
// internal/endpoint), as docs/site-repository.md describes them. Both
// sides import it; it holds names and shapes only.
package sitedoc

import "encoding/json"

// The domain_settings items an endpoint installs (docs/site-repository.md).
const (
	// PolicyItem holds the update-source policy (PolicyFile).
	PolicyItem = "policy"
	// PolicyFile is the file of PolicyItem.
	PolicyFile = "policy.yaml"
	// DeploymentItem holds the component deployment caps (deployment.json).
	DeploymentItem = "deployment"
	// DeploymentFile is the file of DeploymentItem.
	DeploymentFile = "deployment.json"
	// SettingsFile is the file of a DomainItem.
	SettingsFile = "settings.json"
)

// DomainItem is the domain_settings item holding a domain's settings.
func DomainItem(domain string) string { return "domain." + domain }

// Deployment is the content of deployment.json.
type Deployment struct {
	// Components maps a held-back component to the newest version
	// endpoints may install.
	Components map[string]string `json:"components"`
}

// DomainSettings is the content of a domain's settings.json.
type DomainSettings struct {
	// Settings is the domain's configuration document.
	Settings json.RawMessage `json:"settings,omitempty"`
	// Programs maps each program approved for the domain to its version.
	Programs map[string]string `json:"programs"`
}
