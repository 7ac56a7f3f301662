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

// Parser reads SSE events (https://html.spec.whatwg.org/multipage/server-sent-events.html):
// "field: value" lines, comments starting with ':', an event dispatched
// at each blank line. It keeps the events of type EventName; "retry" is
// ignored (the listener's backoff decides).
type Parser struct {
	r     *lineReader
	max   int // bound of an event's data
	beats int // comment lines read
}

// NewParser returns a Parser reading r whose lines and event data are
// bounded by max bytes (longer events are skipped, never buffered whole).
func NewParser(r io.Reader, max int) *Parser {
	return &Parser{r: newLineReader(r, max), max: max}
}

// Beats returns the number of comment lines (heartbeats) read so far.
func (p *Parser) Beats() int { return p.beats }

// Parsed is one notification event: decoded, or skipped with the reason.
type Parsed struct {
	// ID is the SSE id of the event (the notification id when the event
	// has none).
	ID string
	// Event is the decoded notification; valid when Skipped is "".
	Event Event
	// Skipped says why the event was not decoded ("" when it was).
	Skipped string
}

// pending is an event being read.
type pending struct {
	id, typ string
	data    []byte
	hasData bool
	tooLong bool
}

// Next returns the next notification event; alive is called after each
// line read.
func (p *Parser) Next(alive func()) (Parsed, error) {
	var ev pending
	for {
		line, long, err := p.r.line()
		if err != nil {
			return Parsed{}, err
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
func (p *Parser) field(ev *pending, line []byte) {
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
func (p *Parser) decode(ev pending) Parsed {
	out := Parsed{ID: ev.id}
	if ev.tooLong {
		out.Skipped = fmt.Sprintf("data larger than %d bytes", p.max)
		return out
	}
	if err := json.Unmarshal(ev.data, &out.Event); err != nil {
		out.Skipped = "malformed data: " + err.Error()
		return out
	}
	if out.Event.ID == "" {
		out.Event.ID = ev.id
	}
	if strings.TrimSpace(out.Event.ID) == "" {
		out.Skipped = "no notification id"
		return out
	}
	if out.Event.Versions == nil {
		out.Event.Versions = map[string]string{}
	}
	if out.ID == "" {
		out.ID = out.Event.ID
	}
	return out
}
