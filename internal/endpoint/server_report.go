package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
)

// maxOutbox bounds the reports kept for upload while the server cannot
// be reached; the oldest are dropped first.
const maxOutbox = 200

// upload queues a run's report for the server, with the notification
// that triggered the run if any, and sends the queue. Reports the server
// cannot take now wait in the outbox for the next upload.
func (s *serverLink) upload(ctx context.Context, rep *report.Report) {
	if s == nil {
		return
	}
	raw, err := json.Marshal(rep)
	if err == nil {
		var b []byte
		if b, err = json.Marshal(api.ReportUpload{Notification: rep.Notification, Report: raw}); err == nil {
			dir := filepath.Join(s.dir, outboxDir)
			if err = os.MkdirAll(dir, 0o700); err == nil {
				name := fmt.Sprintf("%s-%s.json", rep.Started.UTC().Format("20060102T150405.000000000Z"), rep.ID)
				err = saveServerFile(filepath.Join(dir, name), b, 0o600)
			}
		}
	}
	if err != nil {
		s.log.Warn("queue report for the server", "err", err)
	}
	s.flush(ctx)
}

// flush uploads the queued reports, oldest first, until one cannot be
// sent. A report the server refuses as invalid is dropped.
func (s *serverLink) flush(ctx context.Context) {
	if s == nil {
		return
	}
	dir := filepath.Join(s.dir, outboxDir)
	names, err := outboxNames(dir)
	if err != nil {
		return
	}
	for len(names) > maxOutbox {
		os.Remove(filepath.Join(dir, names[0]))
		names = names[1:]
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		var up api.ReportUpload
		if err == nil {
			err = json.Unmarshal(b, &up)
		}
		if err != nil {
			s.log.Warn("drop unreadable queued report", "file", name, "err", err)
			os.Remove(p)
			continue
		}
		err = s.client.Call(ctx, http.MethodPost, api.PathReports, nil, up, nil)
		var se *api.StatusError
		switch {
		case err == nil:
		case errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusRequestEntityTooLarge):
			s.log.Warn("the server refused a report; dropping it", "file", name, "err", err)
		default:
			s.log.Warn("upload report (kept for the next upload)", "server", s.urls[0], "err", err)
			return
		}
		os.Remove(p)
	}
}

func outboxNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}
