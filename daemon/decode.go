package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/sandboxd/sandboxd/api"
)

// decodeJob reads one job strictly (see checkStrict): every error names
// the field by its full path. A body that onePass takes is read once; any
// other goes through checkStrict, for its error, then encoding/json.
func decodeJob(data []byte) (*api.Job, *api.Error) {
	var fast api.Job
	if decodeOnePass(data, &fast) {
		return &fast, nil
	}
	return decodeJobStrict(data)
}

// decodeJobStrict is decodeJob without onePass: checkStrict, then
// encoding/json.
func decodeJobStrict(data []byte) (*api.Job, *api.Error) {
	if aerr := checkStrict(data, reflect.TypeFor[api.Job](), "the job", false); aerr != nil {
		return nil, aerr
	}
	var job api.Job
	if err := json.Unmarshal(data, &job); err != nil {
		// checkStrict let through only what decodes; this is a backstop.
		return nil, invalid("body: %v", err)
	}
	return &job, nil
}

// maxKeyDepth bounds the nesting of a job's key, an opaque value that is
// only echoed back.
const maxKeyDepth = 1000

// checkStrict walks a body's JSON tokens against the Go type it is
// decoded into, before encoding/json sees it, and refuses what that
// decoder would take loosely: a key that is not exactly a field name of
// its type (encoding/json matches names case-insensitively), a duplicate
// key at any depth (where encoding/json keeps the last), null as an
// element or a map value, a number that is not a whole int64, and a
// number below 1 (every integer of a request is a limit or a size, and 0
// would read as "left out"; a float field, a tolerance, is a number above
// 0 for the same reason). A field given as null is left out. In maps
// (files, env, key) the keys are the caller's: case variants are
// different names there. skipRaw leaves json.RawMessage values (a batch's
// jobs, each checked on its own) unexamined but for their nesting.
func checkStrict(data []byte, t reflect.Type, what string, skipRaw bool) *api.Error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := &strictWalker{dec: dec, skipRaw: skipRaw}
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("body: empty")
	}
	if aerr := w.value(t, "", false); aerr != nil {
		return aerr
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("body: unexpected data after %s", what)
	}
	return nil
}

type strictWalker struct {
	dec     *json.Decoder
	skipRaw bool
}

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	fileType       = reflect.TypeFor[api.File]()
)

// next reads the token that starts the value or key at path.
func (w *strictWalker) next(path string) (json.Token, *api.Error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, w.syntaxError(path, err)
	}
	return tok, nil
}

func (w *strictWalker) syntaxError(path string, err error) *api.Error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return invalid("%s: malformed JSON at byte %d: %v", fieldName(path), se.Offset, se)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body: truncated JSON")
	}
	return invalid("%s: %v", fieldName(path), err)
}

// value reads the value at path and checks it against t. null is taken
// where nullOK (a field: left out). Strings and numbers are read whole,
// without a token walk: a file's content can be most of a large body.
func (w *strictWalker) value(t reflect.Type, path string, nullOK bool) *api.Error {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == fileType || t.Kind() == reflect.String || t.Kind() == reflect.Int64 || t.Kind() == reflect.Float64 || t.Kind() == reflect.Bool || t == rawMessageType && w.skipRaw {
		var raw json.RawMessage
		if err := w.dec.Decode(&raw); err != nil {
			return w.syntaxError(path, err)
		}
		return w.leaf(raw, t, path, nullOK)
	}
	tok, aerr := w.next(path)
	if aerr != nil {
		return aerr
	}
	switch {
	case t == rawMessageType:
		return w.any(tok, path, path, 0)
	case tok == nil && nullOK:
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return wrongType(path, tokenKind(tok), "object")
		}
		return w.object(t, path)
	case reflect.Map:
		if tok != json.Delim('{') {
			return wrongType(path, tokenKind(tok), "object")
		}
		return w.mapOf(t.Elem(), path)
	case reflect.Slice:
		if tok != json.Delim('[') {
			return wrongType(path, tokenKind(tok), "array")
		}
		return w.array(t.Elem(), path)
	}
	panic("checkStrict: no rule for " + t.String())
}

// leaf checks a string, a number, a boolean or a file, read whole as raw
// (valid JSON).
func (w *strictWalker) leaf(raw json.RawMessage, t reflect.Type, path string, nullOK bool) *api.Error {
	got := kindOf(raw)
	switch {
	case t == rawMessageType, got == "null" && nullOK:
		return nil
	case t == fileType && got == "object":
		sub := &strictWalker{dec: json.NewDecoder(bytes.NewReader(raw))}
		sub.dec.UseNumber()
		sub.dec.Token() // the '{'
		return sub.object(t, path)
	case t == fileType && got == "string":
		return nil
	case t == fileType:
		return wrongType(path, got, "string or object")
	case t.Kind() == reflect.String:
		if got != "string" {
			return wrongType(path, got, "string")
		}
		return nil
	case t.Kind() == reflect.Bool:
		if got != "boolean" {
			return wrongType(path, got, "boolean")
		}
		return nil
	}
	if t.Kind() == reflect.Float64 {
		return floatLeaf(raw, got, path)
	}
	if got != "number" {
		return wrongType(path, got, "integer")
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	var ne *strconv.NumError
	switch {
	case errors.As(err, &ne) && ne.Err == strconv.ErrRange:
		return invalid("%s: %s is out of range", path, raw)
	case err != nil:
		return invalid("%s: %s is not a whole number", path, raw)
	case v < 1:
		return invalid("%s: must be at least 1, got %d", path, v)
	}
	return nil
}

// floatLeaf checks a float field (a tolerance): a number above 0, as 0
// would read as "left out".
func floatLeaf(raw json.RawMessage, got, path string) *api.Error {
	if got != "number" {
		return wrongType(path, got, "number")
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	switch {
	case err != nil:
		return invalid("%s: %s is out of range", path, raw)
	case v <= 0:
		return invalid("%s: must be above 0, got %s", path, raw)
	}
	return nil
}

// kindOf names the JSON type of a valid value.
func kindOf(raw json.RawMessage) string {
	switch raw[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "number"
}

// tokenKind names the JSON type of the value a token starts.
func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case json.Delim:
		if tok == json.Delim('{') {
			return "object"
		}
		return "array"
	}
	return "null"
}

// object checks the fields of a struct's object, after its '{'.
func (w *strictWalker) object(t reflect.Type, path string) *api.Error {
	fields := jsonFields(t)
	seen := map[string]bool{}
	for {
		tok, aerr := w.next(path)
		if aerr != nil {
			return aerr
		}
		if tok == json.Delim('}') {
			return nil
		}
		key := tok.(string) // the decoder gives only strings as keys
		fp := key
		if path != "" {
			fp = path + "." + key
		}
		if seen[key] {
			return invalid("%s: duplicate key", fp)
		}
		seen[key] = true
		ft, ok := fields[key]
		if !ok {
			for name := range fields {
				if strings.EqualFold(name, key) {
					return invalid("%s: unknown field (names are case-sensitive: %s)", fp, name)
				}
			}
			return invalid("%s: unknown field", fp)
		}
		if aerr := w.value(ft, fp, true); aerr != nil {
			return aerr
		}
	}
}

// mapOf checks a map's object, after its '{': keys are the caller's.
func (w *strictWalker) mapOf(elem reflect.Type, path string) *api.Error {
	seen := map[string]bool{}
	for {
		tok, aerr := w.next(path)
		if aerr != nil {
			return aerr
		}
		if tok == json.Delim('}') {
			return nil
		}
		key := tok.(string)
		fp := fmt.Sprintf("%s[%q]", path, key)
		if seen[key] {
			return invalid("%s: duplicate key", fp)
		}
		seen[key] = true
		if aerr := w.value(elem, fp, false); aerr != nil {
			return aerr
		}
	}
}

// array checks an array's elements, after its '['.
func (w *strictWalker) array(elem reflect.Type, path string) *api.Error {
	for i := 0; w.dec.More(); i++ {
		if aerr := w.value(elem, fmt.Sprintf("%s[%d]", path, i), false); aerr != nil {
			return aerr
		}
	}
	_, aerr := w.next(path) // the ']'
	return aerr
}

// any checks a value of any shape (a job's key), after its first token:
// no duplicate keys, and nesting within maxKeyDepth. field is the field
// the value is (its path would be as deep as the nesting).
func (w *strictWalker) any(tok json.Token, field, path string, depth int) *api.Error {
	if tok != json.Delim('{') && tok != json.Delim('[') {
		return nil
	}
	if depth >= maxKeyDepth {
		return invalid("%s: nested deeper than %d", field, maxKeyDepth)
	}
	seen := map[string]bool{}
	for i := 0; w.dec.More(); i++ {
		ep := fmt.Sprintf("%s[%d]", path, i)
		if tok == json.Delim('{') {
			key, aerr := w.next(path)
			if aerr != nil {
				return aerr
			}
			ep = fmt.Sprintf("%s[%q]", path, key)
			if seen[key.(string)] {
				return invalid("%s: duplicate key", ep)
			}
			seen[key.(string)] = true
		}
		v, aerr := w.next(ep)
		if aerr != nil {
			return aerr
		}
		if aerr := w.any(v, field, ep, depth+1); aerr != nil {
			return aerr
		}
	}
	_, aerr := w.next(path) // the '}' or ']'
	return aerr
}

// fieldsCache holds jsonFields' answers by type.
var fieldsCache sync.Map

// jsonName is a struct field's JSON name, as encoding/json reads its tag;
// ok is false for a field JSON leaves out.
func jsonName(f reflect.StructField) (name string, ok bool) {
	name, _, _ = strings.Cut(f.Tag.Get("json"), ",")
	if !f.IsExported() || name == "-" {
		return "", false
	}
	if name == "" {
		name = f.Name
	}
	return name, true
}

// jsonFields maps the JSON names of a struct's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldsCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := jsonName(f)
		if !ok {
			continue
		}
		m[name] = f.Type
	}
	fieldsCache.Store(t, m)
	return m
}

func wrongType(path, got, want string) *api.Error {
	return invalid("%s: wrong type (%s, want %s)", fieldName(path), got, want)
}

// fieldName is path, or "body" for the whole of it.
func fieldName(path string) string {
	if path == "" {
		return "body"
	}
	return path
}
