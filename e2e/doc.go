// Package e2e is cascade's end-to-end suite. It builds the real cascade
// binary once and drives real processes, each on its own 127.0.x.y
// loopback address: `cascade origin` (init, publish, serve), `cascade
// mirror`, `cascade server` (init, admin create, run, and the admin
// commands), and enrolled endpoints (`cascade endpoint enroll`, `run`,
// `update --now`). An endpoint's reported address (10.x.y.z, in its
// configuration) selects its entries of the policy. Assertions go through
// the server's admin API (the reports endpoints upload: the source chosen
// for each category, every failed attempt with its failure class, the
// trigger; notifications and their deliveries), through the plans in the
// endpoints' own reports, and through the files installed on disk.
//
// The tests carry the e2e build tag, so that `go test ./...` leaves them
// out:
//
//	go test -tags e2e -count=1 ./e2e/...
//
// Each test has a site of its own (origin, server, sources, endpoints on
// 127.0.N.0/24) and runs in parallel with the others. The rules of
// docs/update-process.md, and where each is exercised:
//
//	effective list: list order, first entry wins     TestCustomizedList (clients x, y)
//	effective list: later duplicates dropped         TestCustomizedList (x: entry 4)
//	a URL entry equal to the origin is the origin    TestCustomizedList (o: scheme case, no slash)
//	triggers: scheduled, manual, notify-components   TestCustomizedList (client s; every test)
//	notify-components updates components only        TestCustomizedList, TestAgentRules, TestAgentChain, TestServerRestartDuringFanOut
//	failover: dead (unreachable), 404 (not_found),   TestCustomizedList (f)
//	  500 (http_error), stale (older than trusted,
//	  older than announced)
//	failover: failed verification                    TestAgentRules (the server's corrupted timestamp)
//	fallback_to_server on, per category              TestCustomizedList (b), TestAgentRules
//	fallback off: components to the origin (origin   TestCustomizedList (b, x; o)
//	  not in the list), the origin tried once when
//	  it is (with download_from_origin)
//	fallback off: domain settings, programs quit     TestCustomizedList (b, x)
//	URL entries and the origin never serve domain    TestCustomizedList (x), TestAgentRules (ua-1)
//	  settings or programs
//	a category quits when no source can update it    TestCustomizedList (o, origin down)
//	a source failed at connection level is not       TestAgentRules (a stopped agent)
//	  contacted again in the run
//	an agent never lists itself                      TestAgentRules (ua-1)
//	clients update from their agent, every category  TestAgentRules, TestAgentChain
//	rule 1: agents.only_from_server                  TestAgentRules
//	rule 2: always_from_standard_source, notified:   TestAgentRules (ua-1: origin first; ua-2: not)
//	  server, then the origin if it starts the list
//	rule 3: agents.source standard                   TestAgentRules
//	clients.source standard                          TestAgentRules
//	agents first: clients held until agents report   TestAgentRules, TestAgentChain, TestServerRestartDuringFanOut
//	a chain of agents three deep; "notify all"       TestAgentChain
//	a server restart (graceful, crash, outage)       TestServerRestartDuringFanOut
//	  during a fan-out, nothing lost
//	deltas (docs/deltas.md): the server rebuilds from   TestDeltaUpdates
//	  deltas, an agent installs and serves them, its
//	  client updates three versions in a row by delta;
//	  20 versions behind (beyond K) gets the full file
//
// Several server processes on one PostgreSQL (docs/server.md, "Several
// server processes"; CASCADE_TEST_POSTGRES names the database, each test
// its own schema):
//
//	the writer SIGKILLed during a sync; a joined     TestWriterKilledDuringSync
//	  process takes over and finishes it
//	three processes, two joined on empty data dirs:  TestThreeServers (join)
//	  the same bytes served; every process's key
//	  pinned (recorded in the database)
//	a policy saved on one process followed by        TestThreeServers (policy)
//	  endpoints on the two others
//	a notification from one process: the agent on a  TestThreeServers (notify)
//	  second first, the client on a third after
//	the writer SIGKILLed with policy publishes in    TestThreeServers (kill-writer)
//	  flight: takeover, consecutive versions,
//	  endpoints and a fresh copy verify
//	PostgreSQL restarted under report load: no       TestThreeServers (database-restart;
//	  acknowledged report lost                         skipped unless root)
//
// Set CASCADE_E2E_KEEP=1 to keep the sites' directories (their paths are
// in the test log) for inspection; a failed test prints the output of
// every process it started.
package e2e
