package web

import (
	"strings"
	"sync"
	"time"
)

// lineSplitter turns one stream's chunks into lines, each sent without
// its newline as soon as it ends. A line left unended for partialAfter
// (a prompt waiting for input) is sent as it is, marked partial; the end
// flushes what is left.
type lineSplitter struct {
	send         func(line string, partial bool)
	partialAfter time.Duration

	mu      sync.Mutex // guards the fields below
	pending strings.Builder
	timer   *time.Timer
}

func newLineSplitter(partialAfter time.Duration, send func(string, bool)) *lineSplitter {
	return &lineSplitter{send: send, partialAfter: partialAfter}
}

func (s *lineSplitter) write(data string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		i := strings.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		s.pending.WriteString(data[:i])
		s.send(strings.TrimSuffix(s.pending.String(), "\r"), false)
		s.pending.Reset()
		data = data[i+1:]
	}
	s.pending.WriteString(data)
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.pending.Len() > 0 && s.partialAfter > 0 {
		s.timer = time.AfterFunc(s.partialAfter, s.flushPartial)
	}
}

func (s *lineSplitter) flushPartial() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending.Len() > 0 {
		s.send(s.pending.String(), true)
		s.pending.Reset()
	}
}

// close sends what is left, as a last line that did not end (not
// partial: nothing follows), and stops the timer.
func (s *lineSplitter) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.pending.Len() > 0 {
		s.send(s.pending.String(), false)
		s.pending.Reset()
	}
}
