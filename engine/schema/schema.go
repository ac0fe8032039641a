package schema

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/hookmap/hookmap/engine/value"
)

var printer = message.NewPrinter(language.English)

// FieldViolation is one problem of a value: the dotted path of the field and what is wrong.
type FieldViolation struct {
	Field       string
	Description string
}

// Schema is a compiled JSON Schema.
type Schema struct {
	raw map[string]any
	sch *jsonschema.Schema
}

// Problem is a problem of a schema document: the path inside it and the message.
type Problem struct {
	Path    []string
	Message string
}

// ErrRemoteRef is returned for a $ref to another document.
var ErrRemoteRef = errors.New("a $ref may only point inside the same schema")

type noLoader struct{}

func (noLoader) Load(url string) (any, error) { return nil, fmt.Errorf("%w: %s", ErrRemoteRef, url) }

// Compile compiles doc (a plain value: a map or a boolean) identified by name (any unique
// string, e.g. the file and key). It returns every problem found.
func Compile(name string, doc any) (*Schema, []Problem) {
	raw, isMap := doc.(map[string]any)
	if _, isBool := doc.(bool); !isMap && !isBool {
		return nil, []Problem{{Message: fmt.Sprintf("a JSON Schema must be a mapping (or a boolean), got %s", value.KindName(doc))}}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	url := "https://hookmap.invalid/" + sanitize(name) + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, []Problem{{Message: "bad JSON Schema: " + err.Error()}}
	}
	sch, err := compile(c, url)
	if err != nil {
		var sve *jsonschema.SchemaValidationError
		var ve *jsonschema.ValidationError
		if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
			if probs := groupProblems(leaves(ve)); len(probs) > 0 {
				return nil, probs
			}
		}
		return nil, []Problem{{Message: "bad JSON Schema: " + strings.ReplaceAll(err.Error(), url, "schema")}}
	}
	if raw == nil {
		raw = map[string]any{}
		if b, _ := doc.(bool); !b {
			raw = map[string]any{"not": map[string]any{}}
		}
	}
	return &Schema{raw: raw, sch: sch}, nil
}

func compile(c *jsonschema.Compiler, url string) (s *jsonschema.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("schema compiler failed: %v", r)
		}
	}()
	return c.Compile(url)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r == '-' || r == '_' || r == '.' || r == '/' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return strings.TrimLeft(b.String(), "/.")
}

// Raw returns the schema document as written.
func (s *Schema) Raw() map[string]any {
	if s == nil {
		return nil
	}
	return s.raw
}

// Validate validates v and returns one violation per problem (every leaf error). Field is
// root followed by the path of the value: "parameters.owner", "parameters.items[0].id";
// for a missing required property, the path of the missing property itself.
func (s *Schema) Validate(root string, v any) []FieldViolation {
	if s == nil || s.sch == nil {
		return nil
	}
	err := validate(s.sch, v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []FieldViolation{{Field: root, Description: err.Error()}}
	}
	var out []FieldViolation
	for _, l := range leaves(ve) {
		field := fieldPath(root, v, l.InstanceLocation)
		if req, ok := l.ErrorKind.(*kind.Required); ok {
			for _, m := range req.Missing {
				out = append(out, FieldViolation{Field: joinField(field, m), Description: "required"})
			}
			continue
		}
		out = append(out, FieldViolation{Field: field, Description: describe(l)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return dedup(out)
}

func validate(s *jsonschema.Schema, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("schema validation failed: %v", r)
		}
	}()
	return s.Validate(v)
}

func dedup(v []FieldViolation) []FieldViolation {
	if len(v) < 2 {
		return v
	}
	out := v[:1]
	for _, e := range v[1:] {
		if e != out[len(out)-1] {
			out = append(out, e)
		}
	}
	return out
}

func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func describe(e *jsonschema.ValidationError) string {
	if e.ErrorKind == nil {
		return "invalid"
	}
	return e.ErrorKind.LocalizedString(printer)
}

func joinField(base, name string) string {
	if base == "" {
		return name
	}
	return base + "." + name
}

// fieldPath renders an instance location, using [i] where the value is a list.
func fieldPath(root string, v any, loc []string) string {
	var b strings.Builder
	b.WriteString(root)
	cur := v
	for _, tok := range loc {
		switch c := cur.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			} else {
				cur = nil
			}
			continue
		case map[string]any:
			cur = c[tok]
		default:
			cur = nil
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// groupProblems turns the leaf errors of a metaschema validation into one problem per
// location in the schema document, alternatives joined with "or".
func groupProblems(ls []*jsonschema.ValidationError) []Problem {
	var out []Problem
	index := map[string]int{}
	for _, l := range ls {
		key := strings.Join(l.InstanceLocation, "\x00")
		msg := describe(l)
		if i, ok := index[key]; ok {
			if !strings.Contains(out[i].Message, msg) {
				out[i].Message += "; or " + msg
			}
			continue
		}
		index[key] = len(out)
		prefix := "bad JSON Schema: "
		if len(l.InstanceLocation) > 0 {
			prefix = "bad JSON Schema at " + strings.Join(l.InstanceLocation, ".") + ": "
		}
		out = append(out, Problem{Path: l.InstanceLocation, Message: prefix + msg})
	}
	return out
}
