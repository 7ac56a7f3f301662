// Package testkit holds the small helpers that tests across the module
// share, so that each is written once: Eventually (a poll loop with a
// deadline), Clock (a manual clock), CopyTree (a snapshot of a directory
// tree), the loopback world (LoopbackIP, Listen, Serve, FreeAddr, Hang:
// servers on addresses of their own in 127.0.0.0/8, stopped when the
// test ends) and Get (a request whose body is read whole).
//
// The packages below it are the larger kits: hostile (a misbehaving
// update source), storetest (the conformance suite of store.Store),
// pgtest (a PostgreSQL schema of its own for each test) and browser (the
// headless Chromium of the console's browser tests and screenshots).
//
// A test kit is not a mock of a real part: tests keep using real
// servers, stores and repositories, and these helpers only drive and
// observe them.
package testkit
