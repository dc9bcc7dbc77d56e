//go:build linux

package daemon

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sandboxd/sandboxd/api"
)

// openAPIPath is the OpenAPI document the tests read: $SANDBOXD_OPENAPI, or
// the repository's docs/openapi.yaml from the package directory.
func openAPIPath() string {
	if p := os.Getenv("SANDBOXD_OPENAPI"); p != "" {
		return p
	}
	return "../docs/openapi.yaml"
}

// openAPIDoc is the part of an OpenAPI 3.1 document the tests compare.
type openAPIDoc struct {
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]*openAPISchema `yaml:"schemas"`
	} `yaml:"components"`
}

type openAPISchema struct {
	Ref                  string                    `yaml:"$ref"`
	Type                 any                       `yaml:"type"`
	Enum                 []string                  `yaml:"enum"`
	Properties           map[string]*openAPISchema `yaml:"properties"`
	Items                *openAPISchema            `yaml:"items"`
	AdditionalProperties any                       `yaml:"additionalProperties"`
	OneOf                []*openAPISchema          `yaml:"oneOf"`
	AnyOf                []*openAPISchema          `yaml:"anyOf"`
	AllOf                []*openAPISchema          `yaml:"allOf"`
	HTTPStatus           map[string]int            `yaml:"x-http-status"`
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	path := openAPIPath()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the OpenAPI document (set SANDBOXD_OPENAPI to its path): %v", err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &doc
}

// openAPIMethods are the operations a path item may hold.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIRoutes: every route of routeTable is an operation of the
// document, and every operation of the document a route.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	inCode := map[string]bool{}
	for _, r := range routeTable {
		method, path, ok := strings.Cut(r.pattern, " ")
		if !ok {
			t.Fatalf("routeTable: pattern %q has no method", r.pattern)
		}
		inCode[strings.ToLower(method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %q (daemon routeTable) is missing from %s: add paths.%q.%s", r.pattern, openAPIPath(), path, strings.ToLower(method))
		}
	}
	for path, item := range doc.Paths {
		for key := range item {
			if !slices.Contains(openAPIMethods, key) {
				continue // parameters, summary, ...
			}
			if !inCode[key+" "+path] {
				t.Errorf("%s: paths.%q.%s is not a route of the daemon (routeTable has no %q)", openAPIPath(), path, key, strings.ToUpper(key)+" "+path)
			}
		}
	}
}

// openAPIRoots are the wire types whose JSON fields the document must
// list: every request and answer body, and what they hold.
var openAPIRoots = []reflect.Type{
	reflect.TypeFor[api.Job](),
	reflect.TypeFor[api.Result](),
	reflect.TypeFor[api.Event](),
	reflect.TypeFor[api.BatchLine](),
	reflect.TypeFor[api.ErrorBody](),
	reflect.TypeFor[api.RunInfo](),
	reflect.TypeFor[api.RunList](),
	reflect.TypeFor[api.Info](),
	reflect.TypeFor[api.CachedFileList](),
}

// openAPIDocOnly are the object schemas of the document that no named Go
// type has, with the fields they must have.
var openAPIDocOnly = map[string][]string{
	// The {"jobs": [...]} form of a batch body (readBatch's wrapper).
	"BatchJobs": {"jobs"},
}

// TestOpenAPIFields: each struct the wire types are made of is a schema of
// the same name, with a property for each JSON field and none other; a
// field that holds another such struct refers to its schema.
func TestOpenAPIFields(t *testing.T) {
	doc := loadOpenAPI(t)
	where := openAPIPath()
	seen := map[string]bool{}
	var walk func(t reflect.Type, from string)
	walk = func(typ reflect.Type, from string) {
		name := typ.Name()
		if seen[name] {
			return
		}
		seen[name] = true
		s := doc.Components.Schemas[name]
		if s == nil {
			t.Errorf("%s: components.schemas.%s is missing (api.%s, the type of %s)", where, name, name, from)
			return
		}
		props := schemaProperties(doc, s)
		fields := wireFields(typ)
		for _, f := range fields {
			p := props[f.name]
			if p == nil {
				t.Errorf("%s: components.schemas.%s.properties.%s is missing (api.%s.%s, json %q)", where, name, f.name, name, f.goName, f.name)
				continue
			}
			if st := wireStruct(f.typ); st != nil {
				if !refersTo(p, st.Name()) {
					t.Errorf("%s: components.schemas.%s.properties.%s does not refer to #/components/schemas/%s (api.%s.%s is a %s)", where, name, f.name, st.Name(), name, f.goName, f.typ)
				}
				walk(st, "api."+name+"."+f.goName)
			}
		}
		for _, p := range sortedKeys(props) {
			if !slices.ContainsFunc(fields, func(f wireField) bool { return f.name == p }) {
				t.Errorf("%s: components.schemas.%s.properties.%s is not a JSON field of api.%s", where, name, p, name)
			}
		}
	}
	for _, r := range openAPIRoots {
		walk(r, "a request or an answer")
	}
	for name, want := range openAPIDocOnly {
		s := doc.Components.Schemas[name]
		if s == nil {
			t.Errorf("%s: components.schemas.%s is missing", where, name)
			continue
		}
		if got := sortedKeys(schemaProperties(doc, s)); !slices.Equal(got, want) {
			t.Errorf("%s: components.schemas.%s has properties %v, want %v", where, name, got, want)
		}
		seen[name] = true
	}
	// An object schema that no wire type has is stale.
	for _, name := range sortedKeys(doc.Components.Schemas) {
		if !seen[name] && len(schemaProperties(doc, doc.Components.Schemas[name])) > 0 {
			t.Errorf("%s: components.schemas.%s is no wire type of package api (nor listed in openAPIDocOnly)", where, name)
		}
	}
}

// TestOpenAPIVerdictsAndCodes: the document's Verdict enum holds every
// verdict of package api a step can get, and its ErrorCode enum every error
// code of package api, with the HTTP status the daemon answers it with.
func TestOpenAPIVerdictsAndCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	where := openAPIPath()
	consts := apiConstants(t)
	var verdicts, codes []string
	for name, c := range consts {
		switch {
		case c.typ == "Verdict" && name != "VerdictWrongAnswer": // a batch summary's, never a step's
			verdicts = append(verdicts, c.value)
		case strings.HasPrefix(name, "Code"):
			codes = append(codes, c.value)
		}
	}
	if len(verdicts) == 0 || len(codes) == 0 {
		t.Fatalf("package api: found verdicts %v and error codes %v", verdicts, codes)
	}
	if s := doc.Components.Schemas["Verdict"]; s == nil {
		t.Errorf("%s: components.schemas.Verdict is missing", where)
	} else {
		compareSets(t, where+": components.schemas.Verdict.enum", "package api's Verdict constants", s.Enum, verdicts)
	}
	compareSets(t, "daemon httpStatus (error code -> HTTP status)", "package api's Code constants", sortedKeys(httpStatus), codes)
	s := doc.Components.Schemas["ErrorCode"]
	if s == nil {
		t.Fatalf("%s: components.schemas.ErrorCode is missing", where)
	}
	compareSets(t, where+": components.schemas.ErrorCode.enum", "package api's Code constants", s.Enum, codes)
	for _, c := range codes {
		if got, want := s.HTTPStatus[c], httpStatus[c]; got != want {
			t.Errorf("%s: components.schemas.ErrorCode.x-http-status.%s is %d; the daemon answers %d %s", where, c, got, want, http.StatusText(want))
		}
	}
}

type apiConst struct{ typ, value string }

// apiConstants reads the string constants of package api from its source
// (beside the document's directory: ../api), with their declared type.
func apiConstants(t *testing.T) map[string]apiConst {
	t.Helper()
	dir := filepath.Join(filepath.Dir(openAPIPath()), "..", "api")
	fset := token.NewFileSet()
	out := map[string]apiConst{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("package api's source in %s: %v", dir, err)
	}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				typ := ""
				if id, ok := vs.Type.(*ast.Ident); ok {
					typ = id.Name
				}
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out[name.Name] = apiConst{typ: typ, value: v}
					}
				}
			}
		}
	}
	return out
}

// compareSets reports what is in one list and not the other.
func compareSets(t *testing.T, what, codeWhat string, doc, code []string) {
	t.Helper()
	for _, c := range code {
		if !slices.Contains(doc, c) {
			t.Errorf("%s: %q is missing (it is in %s)", what, c, codeWhat)
		}
	}
	for _, d := range doc {
		if !slices.Contains(code, d) {
			t.Errorf("%s: %q is not in %s", what, d, codeWhat)
		}
	}
}

type wireField struct {
	name, goName string
	typ          reflect.Type
}

// wireFields lists a struct's JSON fields, as encoding/json names them.
func wireFields(t reflect.Type) []wireField {
	var out []wireField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			// Embedded: its fields are the outer type's, as encoding/json
			// writes them.
			out = append(out, wireFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, wireField{name: name, goName: f.Name, typ: f.Type})
	}
	return out
}

// wireStruct is the struct of package api a field's value is, holds (as
// a pointer, a slice or a map of it), or nil.
func wireStruct(t reflect.Type) reflect.Type {
	for {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			if t == reflect.TypeFor[json.RawMessage]() {
				return nil
			}
			t = t.Elem()
			continue
		case reflect.Struct:
			if t.PkgPath() == reflect.TypeFor[api.Job]().PkgPath() {
				return t
			}
		}
		return nil
	}
}

// schemaProperties are a schema's properties, its own and those of its
// oneOf, anyOf and allOf branches (api.File is a string or an object).
func schemaProperties(doc *openAPIDoc, s *openAPISchema) map[string]*openAPISchema {
	props := map[string]*openAPISchema{}
	// A branch of allOf that is a $ref brings the named schema's
	// properties (an embedded struct: api.ProgramResult's StepResult).
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok && doc.Components.Schemas[name] != nil {
		s = doc.Components.Schemas[name]
	}
	for k, v := range s.Properties {
		props[k] = v
	}
	for _, branches := range [][]*openAPISchema{s.OneOf, s.AnyOf, s.AllOf} {
		for _, b := range branches {
			for k, v := range schemaProperties(doc, b) {
				props[k] = v
			}
		}
	}
	return props
}

// refersTo says whether a property's schema is, or holds (items,
// additionalProperties, a oneOf branch), a $ref to the named schema.
func refersTo(s *openAPISchema, name string) bool {
	if s == nil {
		return false
	}
	if s.Ref == "#/components/schemas/"+name {
		return true
	}
	if refersTo(s.Items, name) {
		return true
	}
	if ap, ok := s.AdditionalProperties.(map[string]any); ok {
		b, _ := yaml.Marshal(ap)
		var sub openAPISchema
		if yaml.Unmarshal(b, &sub) == nil && refersTo(&sub, name) {
			return true
		}
	}
	for _, branches := range [][]*openAPISchema{s.OneOf, s.AnyOf, s.AllOf} {
		for _, b := range branches {
			if refersTo(b, name) {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
