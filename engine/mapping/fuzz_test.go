package mapping

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// FuzzCompileEval compiles arbitrary YAML as a mapping value and evaluates it on arbitrary
// JSON: neither may panic, compile problems must have positions, and a successful result
// must be a plain value that encodes as JSON.
func FuzzCompileEval(f *testing.F) {
	seeds := []struct{ src, body string }{
		{`{$cel: data.n + 1}`, `{"n": 1}`},
		{`{a: {$jmespath: 'length(data.items) > ` + "`2`" + `'}, b: {$var: '$.data.items[0]'}}`, `{"items": [1, 2, 3]}`},
		{`{$tpl: {template: "/x/{{a}}", values: {a: {$cel: data.a}}}}`, `{"a": "q"}`},
		{`{$literal: {$cel: x}}`, `{}`},
		{`events: {$cel: 'data.items.map(i, {"type": "t", "record": i})'}`, `{"items": [{"id": 1234567}]}`},
		{`{$cel: 'jmespath(data, "a[0]")'}`, `{"a": [1.5]}`},
		{`{x: {$cel: 'optional.none()'}, y: [1, {$cel: 'data.?z.orValue(2)'}]}`, `{}`},
		{`{$cel: 'parseJson(data.s)'}`, `{"s": "{\"k\": [1, 2]}"}`},
		{`{$unknown: 1}`, `null`},
		{"a: &x [1]\nb: *x\n", `[]`},
	}
	for _, s := range seeds {
		f.Add(s.src, s.body)
	}
	env, err := NewEnv(testVars...)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src, body string) {
		file, err := yamlsrc.Parse([]byte(src))
		if err != nil {
			return
		}
		c := &Compiler{Env: env, File: file, Path: "f.map.yml"}
		v := c.Compile(file.Root)
		for _, p := range c.Problems {
			if p.Line < 1 || p.Col < 1 || p.Message == "" {
				t.Fatalf("problem without a position: %+v", p)
			}
		}
		data, err := value.DecodeString(body)
		if err != nil {
			data = body
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := v.Eval(NewScope(ctx, map[string]any{"data": data, "headers": map[string]any{"h": "v"}}))
		if err != nil {
			return
		}
		if _, err := value.Plain(out); err != nil {
			t.Fatalf("result is not plain: %v", err)
		}
		if _, err := value.Encode(out); err != nil && !isNaNErr(err) {
			t.Fatalf("result does not encode: %v", err)
		}
	})
}

func isNaNErr(err error) bool {
	return strings.Contains(err.Error(), "NaN") || strings.Contains(err.Error(), "Inf")
}

// hostileHandle is a handle mapping of the kind bundled connectors have, with every kind
// of formula and hookmap's own functions, compiled once: FuzzEvalHostileData runs it on
// what a stranger may send.
const hostileHandle = `
events:
  $cel: >-
    has(data.items) && type(data.items) == list
      ? data.items.map(i, {"type": "item", "record": i, "id": type(i) == map && has(i.id) ? string(i.id) : ""})
      : [{"type": "one", "record": data}]
summary:
  count: {$jmespath: 'length(data.items || ` + "`[]`" + `)'}
  ids: {$jmespath: 'data.items[].id'}
  first: {$var: '$.data.items[0]'}
  action: {$var: '$.data.action'}
  path: {$tpl: {template: "/repos/{{owner}}/{{n}}", values: {owner: {$cel: 'string(data.?owner.orValue("none"))'}, n: {$cel: 'size(rawBody)'}}}}
  json: {$cel: 'toJson(data)'}
  parsed: {$cel: 'type(data) == map && has(data.s) && type(data.s) == string ? parseJson(data.s) : null'}
  signature: {$cel: 'hex(hmacSha256("secret", rawBody))'}
  verified: {$cel: 'secureEquals(headers[?"x-sig"].orValue(""), hex(sha256(rawBody)))'}
  searched: {$cel: 'jmespath(data, "items[?n > ` + "`1`" + `].n")'}
  keys: {$cel: 'type(data) == map ? data.map(k, k) : []'}
  link: {$cel: 'parseLinkHeader(headers[?"link"].orValue(""))'}
`

// FuzzEvalHostileData evaluates a compiled handle on arbitrary request data (parsed as a
// JSON body, or the raw string when it is not JSON): it never panics, a failure is an
// error with the mapping's file and position, and a result is a plain value that encodes
// as JSON.
func FuzzEvalHostileData(f *testing.F) {
	for _, seed := range []string{
		`{"items": [{"id": 1, "n": 3}, {"id": "x", "n": 0.5}], "owner": "octo", "action": "opened"}`,
		`{"s": "{\"k\": [1, 2]}"}`,
		`{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"}`,
		`{"items": "not a list"}`,
		`{"items": [null, [], {}, 1e308, -9223372036854775808]}`,
		`[1, 2, 3]`,
		`"just a string"`,
		`null`,
		`{"items": [{"id": {"nested": {"deep": [1]}}}]}`,
		"{\"\\u0000\": \"\\ud800\"}",
		`not json at all`,
	} {
		f.Add(seed, "link: <https://x/?page=2>; rel=\"next\"")
	}
	file, err := yamlsrc.Parse([]byte(hostileHandle))
	if err != nil {
		f.Fatal(err)
	}
	env, err := NewEnv(testVars...)
	if err != nil {
		f.Fatal(err)
	}
	c := &Compiler{Env: env, File: file, Path: "handle.map.yml"}
	handle := c.Compile(file.Root)
	if len(c.Problems) > 0 {
		f.Fatalf("the handle does not compile: %+v", c.Problems)
	}
	f.Fuzz(func(t *testing.T, body, link string) {
		data, err := value.DecodeString(body)
		if err != nil {
			data = body
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := handle.Eval(NewScope(ctx, map[string]any{
			"data": data, "body": data, "rawBody": body, "method": "POST",
			"headers": map[string]any{"link": link, "x-sig": link}, "query": map[string]any{},
			"state": map[string]any{}, "parameters": map[string]any{},
		}))
		if err != nil {
			if !strings.Contains(err.Error(), "handle.map.yml:") {
				t.Fatalf("an evaluation error without the mapping's position: %v", err)
			}
			return
		}
		if _, err := value.Plain(out); err != nil {
			t.Fatalf("result is not plain: %v", err)
		}
		if _, err := value.Encode(out); err != nil && !isNaNErr(err) {
			t.Fatalf("result does not encode: %v", err)
		}
	})
}
