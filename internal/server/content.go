package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// Notifier announces deployed component versions to endpoints, update
// agents first (internal/notify/hub).
type Notifier interface {
	// NotifyAll notifies every endpoint of domain ("": every domain) that
	// versions (component name to version) are deployed, and returns the
	// stored notification.
	NotifyAll(ctx context.Context, versions map[string]string, domain string) (store.Notification, error)
	// NotifyEndpoint notifies the one endpoint id ("update now") that
	// versions are deployed, at once whatever its role, and returns the
	// stored notification.
	NotifyEndpoint(ctx context.Context, versions map[string]string, id string) (store.Notification, error)
}

// content is what the admin API and the syncer do with components: hold,
// release and deploy versions, and after any change to what is deployed,
// publish the deployment caps and notify the endpoints.
type content struct {
	st     store.Store
	site   *site
	notify Notifier // nil: no notifications (endpoints pick changes up on schedule)
	index  func(ctx context.Context, cat string) (*index.Index, error)
	log    *slog.Logger
}

type deployOutcome struct {
	published    api.Published
	notification string
}

// deployed runs after the deployed versions may have changed: it
// publishes the site documents (the caps) and, when changed is not empty,
// notifies every endpoint of the changed versions.
func (c *content) deployed(ctx context.Context, changed map[string]string) (deployOutcome, error) {
	var out deployOutcome
	var err error
	if out.published, err = c.site.Publish(ctx); err != nil {
		return out, err
	}
	if len(changed) == 0 || c.notify == nil {
		return out, nil
	}
	n, err := c.notify.NotifyAll(ctx, changed, "")
	if err != nil {
		return out, fmt.Errorf("notify endpoints: %w", err)
	}
	out.notification = n.ID
	c.log.Info("notified endpoints", "notification", n.ID, "versions", changed)
	return out, nil
}

// hold holds (or releases) a component and publishes the change.
func (c *content) hold(ctx context.Context, name string, hold bool) (api.Component, error) {
	before, err := c.st.ComponentState(ctx, name)
	if err != nil {
		return api.Component{}, err
	}
	after, err := c.st.HoldComponent(ctx, name, hold)
	if err != nil {
		return api.Component{}, err
	}
	return c.finish(ctx, before, after)
}

// deploy deploys a version the mirrored copy holds and publishes it.
func (c *content) deploy(ctx context.Context, name, version string) (api.Component, error) {
	before, err := c.st.ComponentState(ctx, name)
	if err != nil {
		return api.Component{}, err
	}
	idx, err := c.index(ctx, "components")
	if err != nil {
		return api.Component{}, err
	}
	it, ok := idx.Items[name]
	if !ok || !slices.Contains(it.Kept, version) {
		return api.Component{}, errorf(http.StatusUnprocessableEntity,
			"component %s: version %q is not in the mirrored vendor repository (it holds %v)", name, version, it.Kept)
	}
	after, err := c.st.DeployComponent(ctx, name, version)
	if err != nil {
		return api.Component{}, err
	}
	return c.finish(ctx, before, after)
}

func (c *content) finish(ctx context.Context, before, after store.ComponentState) (api.Component, error) {
	changed := map[string]string{}
	if after.Deployed != before.Deployed {
		changed[after.Name] = after.Deployed
	}
	out, err := c.deployed(ctx, changed)
	comp := componentJSON(after)
	comp.Published, comp.Notification = &out.published, out.notification
	return comp, err
}

// notifyAll notifies the endpoints of domain of every deployed version.
func (c *content) notifyAll(ctx context.Context, domain string) (store.Notification, error) {
	if c.notify == nil {
		return store.Notification{}, errorf(http.StatusServiceUnavailable, "notifications are not available")
	}
	versions, err := c.deployedNow(ctx)
	if err != nil {
		return store.Notification{}, err
	}
	if domain != "" {
		if _, err := c.st.Domain(ctx, domain); err != nil {
			return store.Notification{}, err
		}
	}
	return c.notify.NotifyAll(ctx, versions, domain)
}

// notifyEndpoint notifies the endpoint id alone of the deployed component
// versions.
func (c *content) notifyEndpoint(ctx context.Context, id string) (store.Notification, error) {
	if c.notify == nil {
		return store.Notification{}, errorf(http.StatusServiceUnavailable, "notifications are not available")
	}
	versions, err := c.deployedNow(ctx)
	if err != nil {
		return store.Notification{}, err
	}
	return c.notify.NotifyEndpoint(ctx, versions, id)
}

// deployedNow returns the deployed version of each component.
func (c *content) deployedNow(ctx context.Context) (map[string]string, error) {
	comps, err := c.st.ListComponents(ctx)
	if err != nil {
		return nil, err
	}
	versions := map[string]string{}
	for _, s := range comps {
		if s.Deployed != "" {
			versions[s.Name] = s.Deployed
		}
	}
	return versions, nil
}

func componentJSON(s store.ComponentState) api.Component {
	return api.Component{Name: s.Name, Latest: s.Latest, Synced: s.Synced, Deployed: s.Deployed,
		DeployedAt: api.TimePtr(s.DeployedAt), Held: s.Held}
}

func notificationJSON(n store.Notification) api.Notification {
	out := api.Notification{ID: n.ID, Created: n.Created, Domain: n.Domain, AgentsFirst: n.AgentsFirst,
		ClientsReleased: api.TimePtr(n.ClientsReleased)}
	if err := json.Unmarshal(n.Versions, &out.Versions); err != nil {
		out.Versions = nil
	}
	return out
}
