package storetest

import (
	"errors"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

func testSyncs(e *env) {
	list, err := e.st.ListSyncs(e.ctx, 0)
	e.must(err)
	e.equal("empty sync log", list, []store.SyncRecord{})

	started := e.now()
	e.clock.Advance(time.Second)
	failed, err := e.st.RecordSync(e.ctx, store.SyncRecord{Started: started, Finished: e.now(), Result: store.SyncFailed,
		Error: "mirror origin: connection refused", Server: "https://a.example:8443"})
	e.must(err)
	if failed.ID == "" {
		e.t.Fatal("RecordSync gave no ID")
	}
	e.clock.Advance(time.Second)
	ok, err := e.st.RecordSync(e.ctx, store.SyncRecord{Started: started.Add(time.Second), Finished: e.now(),
		Result: store.SyncSucceeded, Timestamp: 7, Targets: 3, Fetched: 2, Bytes: 1 << 40,
		Deployed: map[string]string{"app": "1.2.0", "agent": "2.0.1"}, Server: "https://a.example:8443", Writer: true})
	e.must(err)
	e.clock.Advance(time.Second)
	mirrored, err := e.st.RecordSync(e.ctx, store.SyncRecord{Started: started.Add(2 * time.Second), Finished: e.now(),
		Result: store.SyncUpToDate, Timestamp: 7, Targets: 3, Deployed: map[string]string{}, Server: "https://b.example:8443"})
	e.must(err)
	e.equal("empty deployed map", mirrored.Deployed, map[string]string(nil))

	list, err = e.st.ListSyncs(e.ctx, 0)
	e.must(err)
	e.equal("sync log", list, []store.SyncRecord{mirrored, ok, failed})
	list, err = e.st.ListSyncs(e.ctx, 2)
	e.must(err)
	e.equal("newest two syncs", list, []store.SyncRecord{mirrored, ok})

	for name, bad := range map[string]store.SyncRecord{
		"no start":       {Finished: e.now(), Result: store.SyncSucceeded},
		"no finish":      {Started: e.now(), Result: store.SyncSucceeded},
		"unknown result": {Started: e.now(), Finished: e.now(), Result: "maybe"},
	} {
		if _, err := e.st.RecordSync(e.ctx, bad); !errors.Is(err, store.ErrInvalid) {
			e.t.Errorf("RecordSync(%s) = %v, want ErrInvalid", name, err)
		}
	}

	pruned, err := e.st.PruneSyncs(e.ctx, ok.Finished)
	e.must(err)
	e.equal("pruned", pruned, int64(1))
	list, err = e.st.ListSyncs(e.ctx, 0)
	e.must(err)
	e.equal("sync log after pruning", list, []store.SyncRecord{mirrored, ok})
}
