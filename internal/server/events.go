package server

// eventHub is the part of the notification fan-out (internal/notify) that
// the registry and the admin API consult: who holds an event stream.
type eventHub interface {
	// Connected reports whether the endpoint holds an event stream.
	Connected(endpointID string) bool
	// Disconnect closes the endpoint's event streams (after revocation).
	Disconnect(endpointID string)
	// ConnectedCount is the number of endpoints holding a stream.
	ConnectedCount() int
}

// connected reports whether an endpoint holds an event stream.
func (s *Server) connected(id string) bool { return s.hub != nil && s.hub.Connected(id) }

// disconnect closes an endpoint's event streams.
func (s *Server) disconnect(id string) {
	if s.hub != nil {
		s.hub.Disconnect(id)
	}
}

// connectedCount is the number of endpoints holding an event stream.
func (s *Server) connectedCount() int {
	if s.hub == nil {
		return 0
	}
	return s.hub.ConnectedCount()
}
