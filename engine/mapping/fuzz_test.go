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
