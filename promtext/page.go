package promtext

import (
	"bytes"
	"net/http"
	"slices"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// Prometheus metric types, as a family's TYPE line names them.
const (
	Counter   = "counter"
	Gauge     = "gauge"
	Histogram = "histogram"
)

// Page is the families of one /metrics page. Its zero value is an empty
// page; Family adds to it, ServeHTTP and Write read it.
type Page struct {
	families []family // sorted by name, as Prometheus' client wrote them
}

type family struct {
	name, typ, help string
	set             *metrics.Set
}

// Family adds the family name, of type typ (Counter, Gauge, Histogram),
// with its HELP text, and returns the set its series go in. A series'
// name is the family's, alone or with labels (Series). Not safe to call
// while the page is served.
func (p *Page) Family(name, typ, help string) *metrics.Set {
	f := family{name: name, typ: typ, help: help, set: metrics.NewSet()}
	i, found := slices.BinarySearchFunc(p.families, name, func(f family, name string) int { return strings.Compare(f.name, name) })
	if found {
		panic("promtext: family " + name + " added twice")
	}
	p.families = slices.Insert(p.families, i, f)
	return f.set
}

// Write writes the page: each family's HELP and TYPE lines and series,
// then the Go runtime's and the process's metrics (go_*, process_*). A
// family with no series yet is left out, as Prometheus' client did.
func (p *Page) Write(b *bytes.Buffer) {
	for _, f := range p.families {
		var h strings.Builder
		h.WriteString("# HELP " + f.name + " ")
		writeEscaped(&h, f.help, false)
		h.WriteString("\n# TYPE " + f.name + " " + f.typ + "\n")
		start := b.Len()
		b.WriteString(h.String())
		series := b.Len()
		f.set.WritePrometheus(b)
		if b.Len() == series {
			b.Truncate(start)
		}
	}
	metrics.WriteProcessMetrics(b)
	metrics.WriteFDMetrics(b)
}

// ServeHTTP answers with the page in Prometheus' text format 0.0.4.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	p.Write(&b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(b.Bytes())
}

// Series is the name of family's series with the given labels, given as
// name, value, name, value...: `family{name="value",...}`, each value
// escaped as the text format wants.
func Series(family string, labels ...string) string {
	if len(labels)%2 != 0 {
		panic("promtext: labels not in name, value pairs")
	}
	var b strings.Builder
	b.WriteString(family)
	for i := 0; i < len(labels); i += 2 {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(labels[i] + `="`)
		writeEscaped(&b, labels[i+1], true)
		b.WriteByte('"')
	}
	if len(labels) > 0 {
		b.WriteByte('}')
	}
	return b.String()
}

// writeEscaped writes s with backslashes and line feeds escaped, and
// double quotes too in a label's value, as the text format wants. (Not a
// strings.Replacer in a package variable: that would be built at every
// start of every sandboxd command.)
func writeEscaped(b *strings.Builder, s string, quotes bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '"' && quotes:
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
}
