package schema

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func mustCompile(t *testing.T, doc any) *Schema {
	t.Helper()
	s, probs := Compile("test", doc)
	require.Empty(t, probs)
	return s
}

func TestValidate(t *testing.T) {
	s := mustCompile(t, map[string]any{
		"type":     "object",
		"required": []any{"owner", "items"},
		"properties": map[string]any{
			"owner":  map[string]any{"type": "string", "minLength": int64(2)},
			"region": map[string]any{"enum": []any{"eu", "us"}},
			"email":  map[string]any{"type": "string", "format": "email"},
			"items": map[string]any{"type": "array", "items": map[string]any{
				"type": "object", "required": []any{"id"},
				"properties": map[string]any{"id": map[string]any{"type": "integer"}},
			}},
		},
	})
	require.Empty(t, s.Validate("parameters", map[string]any{"owner": "octo", "items": []any{map[string]any{"id": int64(1234567)}}}))
	got := s.Validate("parameters", map[string]any{
		"owner":  "o",
		"region": "mars",
		"email":  "nope",
		"items":  []any{map[string]any{"id": 1.5}, map[string]any{}},
	})
	fields := map[string]string{}
	for _, v := range got {
		fields[v.Field] = v.Description
	}
	require.Contains(t, fields, "parameters.owner")
	require.Contains(t, fields, "parameters.region")
	require.Contains(t, fields, "parameters.email")
	require.Contains(t, fields, "parameters.items[0].id")
	require.Equal(t, "required", fields["parameters.items[1].id"])
	require.Len(t, got, 5)

	got = s.Validate("parameters", map[string]any{})
	require.Equal(t, []FieldViolation{{Field: "parameters.items", Description: "required"}, {Field: "parameters.owner", Description: "required"}}, got)
	got = s.Validate("parameters", "x")
	require.Equal(t, "parameters", got[0].Field)

	var nilSchema *Schema
	require.Nil(t, nilSchema.Validate("p", 1))
	require.Nil(t, nilSchema.Raw())
	require.Equal(t, "object", s.Raw()["type"])
}

func TestCompileProblems(t *testing.T) {
	_, probs := Compile("t", map[string]any{"type": "objekt"})
	require.Len(t, probs, 1)
	require.Equal(t, []string{"type"}, probs[0].Path)
	require.Contains(t, probs[0].Message, "bad JSON Schema at type")

	_, probs = Compile("t", map[string]any{"properties": map[string]any{"n": map[string]any{"minimum": "one"}}})
	require.Equal(t, []string{"properties", "n", "minimum"}, probs[0].Path)

	_, probs = Compile("t", []any{1})
	require.Contains(t, probs[0].Message, "must be a mapping")

	_, probs = Compile("t", map[string]any{"$ref": "https://example.com/s.json"})
	require.NotEmpty(t, probs)
	require.Contains(t, probs[0].Message, "bad JSON Schema")

	_, probs = Compile("t", map[string]any{"pattern": "("})
	require.NotEmpty(t, probs)

	s, probs := Compile("t", true)
	require.Empty(t, probs)
	require.Empty(t, s.Validate("x", 1))
	s, probs = Compile("t", false)
	require.Empty(t, probs)
	require.NotEmpty(t, s.Validate("x", 1))

	s = mustCompile(t, map[string]any{"$defs": map[string]any{"id": map[string]any{"type": "integer"}}, "properties": map[string]any{"id": map[string]any{"$ref": "#/$defs/id"}}})
	require.Empty(t, s.Validate("x", map[string]any{"id": int64(3)}))
	require.NotEmpty(t, s.Validate("x", map[string]any{"id": "3"}))
}
