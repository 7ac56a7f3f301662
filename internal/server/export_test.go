package server

import (
	"context"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
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
