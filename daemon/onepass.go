package daemon

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/sandboxd/sandboxd/api"
)

// onePass decodes a request body into its Go value in one pass over its
// bytes, under the same rules as checkStrict followed by json.Unmarshal,
// and gives the same value. It knows only how to accept: at anything that
// checkStrict would refuse (or that it does not handle, such as an escape
// in a struct's key) it gives up, and the caller runs checkStrict, whose
// error names the field. So it may give up on a body that checkStrict
// takes, but never take one that checkStrict refuses.
//
// A large string (a step's stdin, a file's content) is unescaped once,
// straight into the bytes of the string that holds it.
type onePass struct {
	data []byte
	pos  int
}

// decodeOnePass fills v (a pointer) from data; false means "not taken
// here": run the full check.
func decodeOnePass(data []byte, v any) bool {
	p := &onePass{data: data}
	rv := reflect.ValueOf(v).Elem()
	if !p.value(rv, false) {
		return false
	}
	p.space()
	return p.pos == len(p.data)
}

// jsonSpace is JSON's whitespace.
func jsonSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *onePass) space() {
	for p.pos < len(p.data) && jsonSpace(p.data[p.pos]) {
		p.pos++
	}
}

// peek is the next byte past whitespace, 0 at the end.
func (p *onePass) peek() byte {
	p.space()
	if p.pos == len(p.data) {
		return 0
	}
	return p.data[p.pos]
}

// literal takes word (null, true, false) at the current position.
func (p *onePass) literal(word string) bool {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		return false
	}
	p.pos += len(word)
	return true
}

// value decodes the value at the current position into v. null is taken
// where nullOK (a field: left out).
func (p *onePass) value(v reflect.Value, nullOK bool) bool {
	t := v.Type()
	c := p.peek()
	if t == rawMessageType {
		// A key: any value, kept as its bytes (null too, as json.Unmarshal
		// does).
		start := p.pos
		if !p.anyValue(0) {
			return false
		}
		v.SetBytes(bytes.Clone(p.data[start:p.pos]))
		return true
	}
	if c == 'n' {
		if !nullOK || !p.literal("null") {
			return false
		}
		// Left out: encoding/json leaves the field as it was, which here
		// is its zero value.
		return true
	}
	if t.Kind() == reflect.Pointer {
		e := reflect.New(t.Elem())
		if !p.value(e.Elem(), false) {
			return false
		}
		v.Set(e)
		return true
	}
	if t == fileType {
		f := v.Addr().Interface().(*api.File)
		switch c {
		case '"':
			s, ok := p.str()
			f.Content = s
			return ok
		case '{':
			return p.object(v)
		}
		return false
	}
	switch t.Kind() {
	case reflect.String:
		if c != '"' {
			return false
		}
		s, ok := p.str()
		v.SetString(s)
		return ok
	case reflect.Bool:
		switch {
		case p.literal("true"):
			v.SetBool(true)
		case p.literal("false"):
		default:
			return false
		}
		return true
	case reflect.Int64:
		raw, ok := p.number()
		if !ok || raw[0] < '1' || raw[0] > '9' || bytes.ContainsAny(raw, ".eE") {
			return false
		}
		n, err := strconv.ParseInt(unsafe.String(&raw[0], len(raw)), 10, 64)
		if err != nil {
			return false
		}
		v.SetInt(n)
		return true
	case reflect.Float64:
		raw, ok := p.number()
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(unsafe.String(&raw[0], len(raw)), 64)
		if err != nil || !(f > 0) {
			return false
		}
		v.SetFloat(f)
		return true
	case reflect.Struct:
		return c == '{' && p.object(v)
	case reflect.Map:
		return c == '{' && p.mapOf(v)
	case reflect.Slice:
		return c == '[' && p.array(v)
	}
	return false
}

// object decodes a struct's object: keys exactly its fields' names, each
// at most once.
func (p *onePass) object(v reflect.Value) bool {
	fields := onePassFields(v.Type())
	var seen uint64
	return p.members(p.plainKey, func(key string) bool {
		f, ok := fields.byName[key]
		if !ok || seen&(1<<f.bit) != 0 {
			return false
		}
		seen |= 1 << f.bit
		return p.value(v.FieldByIndex(f.index), true)
	})
}

// members walks an object at p.pos: for each member, readKey reads its key
// (at the opening quote) and member decodes its value (after the colon).
// Either saying false gives up.
func (p *onePass) members(readKey func() (string, bool), member func(key string) bool) bool {
	p.pos++ // '{'
	if p.peek() == '}' {
		p.pos++
		return true
	}
	for {
		if p.peek() != '"' {
			return false
		}
		key, ok := readKey()
		if !ok || p.peek() != ':' {
			return false
		}
		p.pos++
		if !member(key) {
			return false
		}
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return true
		default:
			return false
		}
	}
}

// plainKey reads a struct's key: a string of plain ASCII, without
// escapes (any other key is not a field name, or needs the full check).
func (p *onePass) plainKey() (string, bool) {
	start := p.pos + 1
	for i := start; i < len(p.data); i++ {
		c := p.data[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return unsafe.String(unsafe.SliceData(p.data[start:i]), i-start), true
		case c == '\\' || c < ' ' || c >= utf8.RuneSelf:
			return "", false
		}
	}
	return "", false
}

// mapOf decodes a map's object: its keys are the caller's, each at most
// once (after unescaping, as checkStrict compares them).
func (p *onePass) mapOf(v reflect.Value) bool {
	t := v.Type()
	m := reflect.MakeMap(t)
	v.Set(m)
	return p.members(p.str, func(key string) bool {
		kv := reflect.ValueOf(key)
		if m.MapIndex(kv).IsValid() {
			return false
		}
		e := reflect.New(t.Elem()).Elem()
		if !p.value(e, false) {
			return false
		}
		m.SetMapIndex(kv, e)
		return true
	})
}

// array decodes an array into a slice (empty, not nil, for []).
func (p *onePass) array(v reflect.Value) bool {
	t := v.Type()
	s := reflect.MakeSlice(t, 0, 0)
	p.pos++ // '['
	if p.peek() == ']' {
		p.pos++
		v.Set(s)
		return true
	}
	for {
		s = reflect.Append(s, reflect.Zero(t.Elem()))
		if !p.value(s.Index(s.Len()-1), false) {
			return false
		}
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			v.Set(s)
			return true
		default:
			return false
		}
	}
}

// anyValue checks a value of any shape (a key) at depth: valid JSON, no
// key twice in an object, nesting within maxKeyDepth. Keys with escapes
// or non-ASCII bytes are left to the full check.
func (p *onePass) anyValue(depth int) bool {
	switch c := p.peek(); c {
	case '{', '[':
		if depth >= maxKeyDepth {
			return false
		}
		closer := byte(']')
		var seen map[string]bool
		if c == '{' {
			closer, seen = '}', map[string]bool{}
		}
		p.pos++
		if p.peek() == closer {
			p.pos++
			return true
		}
		for {
			if c == '{' {
				if p.peek() != '"' {
					return false
				}
				key, ok := p.plainKey()
				if !ok || seen[key] {
					return false
				}
				seen[key] = true
				if p.peek() != ':' {
					return false
				}
				p.pos++
			}
			if !p.anyValue(depth + 1) {
				return false
			}
			switch p.peek() {
			case ',':
				p.pos++
			case closer:
				p.pos++
				return true
			default:
				return false
			}
		}
	case '"':
		_, ok := p.str()
		return ok
	case 'n':
		return p.literal("null")
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	}
	_, ok := p.number()
	return ok
}

// number reads a JSON number (its grammar exactly), as its bytes.
func (p *onePass) number() ([]byte, bool) {
	d, i := p.data, p.pos
	digits := func() bool {
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	raw := d[p.pos:i]
	p.pos = i
	return raw, true
}

// plainByte marks the bytes that stand for themselves in a JSON string:
// ASCII but for the quote, the backslash and the control characters.
var plainByte = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainRun is the end of the run of plain bytes (plainByte) from i: eight
// at a time while none of the eight is a quote, a backslash, a control
// character or past ASCII.
func plainRun(d []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(d); i += 8 {
		x := binary.LittleEndian.Uint64(d[i:])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		special := (x-ones*' ')&^x | (quote-ones)&^quote | (backslash-ones)&^backslash | x
		if special&highs != 0 {
			break
		}
	}
	for i < len(d) && plainByte[d[i]] {
		i++
	}
	return i
}

// str reads a string at the current position (its opening quote),
// unescaped as encoding/json does: invalid UTF-8 and lone surrogates
// become U+FFFD. The string owns its bytes.
func (p *onePass) str() (string, bool) {
	d := p.data
	i := p.pos + 1
	// Most strings have no escapes: their length is known at the next
	// quote, and the bytes are copied in runs.
	end := bytes.IndexByte(d[i:], '"')
	if end < 0 {
		return "", false
	}
	out := make([]byte, 0, end)
	for {
		start := i
		i = plainRun(d, i)
		out = append(out, d[start:i]...)
		if i == len(d) {
			return "", false
		}
		switch c := d[i]; {
		case c == '"':
			p.pos = i + 1
			if len(out) == 0 {
				return "", true
			}
			return unsafe.String(&out[0], len(out)), true
		case c == '\\':
			if i+1 == len(d) {
				return "", false
			}
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(d[i+2:])
				if r < 0 {
					return "", false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2 := hex4escape(d[i:]); r2 >= 0 {
						if pair := utf16.DecodeRune(r, r2); pair != unicode.ReplacementChar {
							i += 6
							out = utf8.AppendRune(out, pair)
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			i += 2
		case c < ' ':
			return "", false
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, r)
			} else {
				out = append(out, d[i:i+size]...)
			}
			i += size
		}
	}
}

// hex4 reads 4 hex digits as a rune; -1 if they are not.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// hex4escape reads \uXXXX; -1 if that is not what follows.
func hex4escape(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	return hex4(b[2:])
}

// onePassField is a struct field as onePass finds it by its JSON name.
type onePassField struct {
	index []int
	bit   uint // its bit in object's set of keys seen
}

type onePassStruct struct {
	byName map[string]onePassField
}

var onePassCache sync.Map // reflect.Type -> *onePassStruct

// onePassFields names a struct's fields as jsonFields does.
func onePassFields(t reflect.Type) *onePassStruct {
	if s, ok := onePassCache.Load(t); ok {
		return s.(*onePassStruct)
	}
	s := &onePassStruct{byName: map[string]onePassField{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := jsonName(f)
		if !ok {
			continue
		}
		if len(s.byName) == 64 {
			panic("onePass: more than 64 fields in " + t.String())
		}
		s.byName[name] = onePassField{index: f.Index, bit: uint(len(s.byName))}
	}
	onePassCache.Store(t, s)
	return s
}
