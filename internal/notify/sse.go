package notify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// lineReader reads lines ending in LF or CRLF, each at most max bytes:
// a longer line is reported as too long and discarded while it is read,
// never buffered whole.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 4096), max: max}
}

// line returns the next line without its end, or long when it was
// longer than max (its content is then dropped). The slice is valid
// until the next call. A stream ending mid-line returns the error.
func (lr *lineReader) line() (line []byte, long bool, err error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if !long && len(lr.buf)+len(chunk) > lr.max+2 {
			long, lr.buf = true, lr.buf[:0]
		}
		if !long {
			lr.buf = append(lr.buf, chunk...)
		}
		switch {
		case err == nil:
			line = bytes.TrimSuffix(bytes.TrimSuffix(lr.buf, []byte("\n")), []byte("\r"))
			return line, long, nil
		case errors.Is(err, bufio.ErrBufferFull):
		default:
			return nil, long, err
		}
	}
}

// parser reads SSE events (https://html.spec.whatwg.org/multipage/server-sent-events.html):
// "field: value" lines, comments starting with ':', an event dispatched
// at each blank line. It keeps the events of type EventName; "retry" is
// ignored (Listen's backoff decides).
type parser struct {
	r     *lineReader
	max   int // bound of an event's data
	beats int // comment lines read
}

// parsed is one notification event: decoded, or skipped with the reason.
type parsed struct {
	id      string
	event   Event
	skipped string
}

// pending is an event being read.
type pending struct {
	id, typ string
	data    []byte
	hasData bool
	tooLong bool
}

// next returns the next notification event; alive is called after each
// line.
func (p *parser) next(alive func()) (parsed, error) {
	var ev pending
	for {
		line, long, err := p.r.line()
		if err != nil {
			return parsed{}, err
		}
		alive()
		switch {
		case long:
			ev.tooLong = true
		case len(line) == 0:
			if ev.typ == EventName && (ev.hasData || ev.tooLong) {
				return p.decode(ev), nil
			}
			ev = pending{}
		case line[0] == ':':
			p.beats++
		default:
			p.field(&ev, line)
		}
	}
}

// field applies one "field: value" line to ev.
func (p *parser) field(ev *pending, line []byte) {
	name, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(name) {
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			ev.id = string(value)
		}
	case "event":
		ev.typ = string(value)
	case "data":
		if ev.tooLong || len(ev.data)+len(value)+1 > p.max {
			ev.tooLong, ev.data = true, nil
			return
		}
		if ev.hasData {
			ev.data = append(ev.data, '\n')
		}
		ev.data, ev.hasData = append(ev.data, value...), true
	}
}

// decode turns a complete event into a notification.
func (p *parser) decode(ev pending) parsed {
	out := parsed{id: ev.id}
	if ev.tooLong {
		out.skipped = fmt.Sprintf("data larger than %d bytes", p.max)
		return out
	}
	if err := json.Unmarshal(ev.data, &out.event); err != nil {
		out.skipped = "malformed data: " + err.Error()
		return out
	}
	if out.event.ID == "" {
		out.event.ID = ev.id
	}
	if strings.TrimSpace(out.event.ID) == "" {
		out.skipped = "no notification id"
		return out
	}
	if out.event.Versions == nil {
		out.event.Versions = map[string]string{}
	}
	if out.id == "" {
		out.id = out.event.ID
	}
	return out
}
