// Package e2e is cascade's end-to-end suite. It builds the real cascade
// binary once and drives real processes, each on its own 127.0.x.y
// loopback address: `cascade origin` (init, publish, serve), `cascade
// mirror`, `cascade server` (init, admin create, run, and the admin
// commands), and enrolled endpoints (`cascade endpoint enroll`, `run`,
// `update --now`). Assertions go through the server's admin API (the
// reports endpoints upload: the source chosen for each category, every
// failed attempt with its failure class, the trigger; notifications and
// their deliveries) and through the files installed on disk.
//
// Every rule of DESIGN.md section 4 is exercised once over the network,
// together with a server restart during a notification fan-out and a
// chain of three update agents. The tests carry the e2e build tag, so
// that `go test ./...` does not run them:
//
//	go test -tags e2e -count=1 ./e2e/...
//
// Set CASCADE_E2E_KEEP=1 to keep the sites' directories (printed in the
// test log) for inspection.
package e2e
