package server

import (
	"context"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/trust"
)

// WriterForTest returns the server's hold on the writer role (nil: none).
func (s *Server) WriterForTest() store.Writer { return s.site.Writer() }

// PublishAsForTest publishes the site documents as if w were this
// process's hold on the writer role: a stale writer that has not noticed
// that it lost the role.
func (s *Server) PublishAsForTest(ctx context.Context, w store.Writer) (api.Published, error) {
	s.site.mu.Lock()
	s.site.writer = w
	s.site.mu.Unlock()
	defer func() {
		s.site.mu.Lock()
		if s.site.writer == w {
			s.site.writer = nil
		}
		s.site.mu.Unlock()
	}()
	return s.site.Publish(ctx)
}

// PruneForTest runs one pass of the history pruning (as the prune
// service does every PruneInterval).
func (s *Server) PruneForTest(ctx context.Context) { s.pruneOnce(ctx) }

// MaterialiseForTest copies the database's newest site version into
// dir/site/, verified as a joining process does: with a new trust store
// in trustDir that starts at metadata/1.root.json and walks the root
// chain up. It returns the version copied.
func (s *Server) MaterialiseForTest(ctx context.Context, dir, trustDir string) (int64, error) {
	root, err := s.cl.SiteFile(ctx, "metadata/1.root.json")
	if err != nil {
		return 0, err
	}
	ts, err := trust.Init(trustDir, root, trust.Options{Kind: string(repo.Site), Now: s.now, Logger: s.log})
	if err != nil {
		return 0, err
	}
	head, err := s.cl.SiteHead(ctx)
	if err != nil {
		return 0, err
	}
	return head.Version, materialise(ctx, s.cl, ts, head, dir, s.log)
}

// AgentDownAfter is how long an update agent that is not connected may go
// unseen before the console's dashboard warns.
const AgentDownAfter = agentDownAfter
