package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad writes arbitrary YAML into a connector's files and loads it: Load must never
// panic and must either load the connector or say why, with a position.
func FuzzLoad(f *testing.F) {
	f.Add("name: X\n", "implementationType: webhook\nmethods:\n  subscribe: {implementationType: mapping}\n  handle: {implementationType: mapping}\n", "events: [{type: x, record: {$cel: data}}]\n")
	f.Add("api: {baseUri: {$cel: x}}\n", "verify: {$cel: 1}\n", "{$tpl: {template: '{{', values: 1}}")
	f.Add("parametersSchema: {type: [1]}\n", "methods: [1]\n", "a: &a [*a]\n")
	f.Fuzz(func(t *testing.T, spec, event, handle string) {
		dir := filepath.Join(t.TempDir(), "c")
		ev := filepath.Join(dir, "events", "e")
		if err := os.MkdirAll(ev, 0o755); err != nil {
			t.Fatal(err)
		}
		for p, s := range map[string]string{
			filepath.Join(dir, "spec.yml"):         spec,
			filepath.Join(ev, "spec.yml"):          event,
			filepath.Join(ev, "handle.map.yml"):    handle,
			filepath.Join(ev, "subscribe.map.yml"): "state: {}\n",
		} {
			if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		set, diags := Load(dir)
		if len(diags) == 0 && len(set.Connectors()) != 1 {
			t.Fatalf("no diagnostics but %d connectors", len(set.Connectors()))
		}
		for _, d := range diags {
			if d.Message == "" || d.File == "" {
				t.Fatalf("empty diagnostic %+v", d)
			}
		}
	})
}
