package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// TestWriteErrorDatabaseFailure: a database that cannot be written answers
// 503 in the server's words (endpoints get only the status text), and the
// driver's own message goes to the log, not to the client.
func TestWriteErrorDatabaseFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cascade.db")
	st, err := store.Open(t.Context(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, dbErr := store.Open(t.Context(), "file:"+path+"?mode=ro", store.Options{})
	if store.DriverError(dbErr) == nil {
		t.Fatalf("open read-only: %v, want a store error with the driver's", dbErr)
	}
	driverText := store.DriverError(dbErr).Error()
	for _, detail := range []bool{false, true} {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		w := httptest.NewRecorder()
		writeError(w, log, httptest.NewRequest(http.MethodGet, "/api/v1/x", nil), dbErr, detail)
		var body api.Error
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		want := "Service Unavailable"
		if detail {
			want = dbErr.Error()
		}
		if w.Code != http.StatusServiceUnavailable || body.Error != want {
			t.Errorf("detail %v: %d %q, want 503 %q", detail, w.Code, body.Error, want)
		}
		if strings.Contains(w.Body.String(), driverText) {
			t.Errorf("detail %v: the answer carries the driver's message %q", detail, driverText)
		}
		if !strings.Contains(logs.String(), "database=") || !strings.Contains(logs.String(), driverText) {
			t.Errorf("detail %v: log %q lacks the driver's message %q", detail, logs.String(), driverText)
		}
	}
}
