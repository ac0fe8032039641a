package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/diag"
	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/rest"
	"github.com/hookmap/hookmap/engine/schema"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// MaxFileBytes bounds the size of one connector file.
const MaxFileBytes = 4 << 20

var keyRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Load loads connectors. Each dir is either one connector folder (it has a spec.yml) or a
// folder of connector folders. A connector with any problem is left out of the Set; the
// problems of all connectors are returned sorted by file, line and column. Files that are
// not part of the layout (README.md, tests…) are ignored.
func Load(dirs ...string) (*Set, []Diagnostic) {
	set := &Set{byKey: map[string]*Connector{}}
	var all diag.List
	type candidate struct{ dir, key string }
	var cands []candidate
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		if err != nil {
			all.Add(dir, 0, 0, "cannot read the folder: %s", pathErr(err))
			continue
		}
		if !st.IsDir() {
			all.Add(dir, 0, 0, "not a folder")
			continue
		}
		if isFile(filepath.Join(dir, "spec.yml")) {
			// "." or "../x/.." name the folder by where they lead.
			key := filepath.Base(filepath.Clean(dir))
			if abs, err := filepath.Abs(dir); err == nil {
				key = filepath.Base(abs)
			}
			cands = append(cands, candidate{dir: dir, key: key})
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			all.Add(dir, 0, 0, "cannot read the folder: %s", pathErr(err))
			continue
		}
		for _, e := range entries {
			name := e.Name()
			sub := filepath.Join(dir, name)
			if strings.HasPrefix(name, ".") || !isDir(sub) {
				continue
			}
			switch {
			case isFile(filepath.Join(sub, "spec.yml")):
				cands = append(cands, candidate{dir: sub, key: name})
			case isDir(filepath.Join(sub, "events")) || isDir(filepath.Join(sub, "global-webhooks")):
				all.Add(sub, 0, 0, "a connector folder needs a spec.yml")
			}
		}
	}
	type result struct {
		c     *Connector
		diags []Diagnostic
	}
	results := make([]result, len(cands))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, cand := range cands {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, ds := loadConnector(cand.dir, cand.key)
			results[i] = result{c: c, diags: ds}
		}()
	}
	wg.Wait()
	from := map[string]string{}
	for i, r := range results {
		all.Append(r.diags...)
		if r.c == nil || len(r.diags) > 0 {
			continue
		}
		if prev, dup := from[r.c.Key]; dup {
			all.Add(filepath.Join(cands[i].dir, "spec.yml"), 0, 0, "connector %q is loaded from %s already; keys must be unique", r.c.Key, prev)
			continue
		}
		from[r.c.Key] = cands[i].dir
		set.Add(r.c)
	}
	items := all.Items()
	return set, diag.Dedup(items)
}

func pathErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// loader loads one connector.
type loader struct {
	dir, key string
	diags    diag.List
	api      *rest.API
}

func loadConnector(dir, key string) (c *Connector, ds []Diagnostic) {
	l := &loader{dir: dir, key: key}
	defer func() {
		if r := recover(); r != nil {
			c = nil
			ds = append(l.diags.Items(), Diagnostic{File: filepath.Join(dir, "spec.yml"), Message: fmt.Sprintf("internal error while loading the connector: %v", r)})
		}
	}()
	c = l.connector()
	return c, l.diags.Items()
}

func (l *loader) add(file string, n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil {
		line, col = n.Line, n.Column
	}
	l.diags.Add(file, line, col, format, args...)
}

func (l *loader) addProblems(file string, probs []yamlsrc.Problem) {
	for _, p := range probs {
		line, col := p.Line, p.Col
		if line <= 0 {
			line, col = 1, 1
		}
		l.diags.Add(file, line, col, "%s", p.Message)
	}
}

// readYAML reads and parses a file; it returns nil (with a diagnostic) when it cannot.
func (l *loader) readYAML(path string) *yamlsrc.File {
	st, err := os.Stat(path)
	if err != nil {
		l.diags.Add(path, 0, 0, "cannot read: %s", pathErr(err))
		return nil
	}
	if st.Size() > MaxFileBytes {
		l.diags.Add(path, 0, 0, "file is larger than %d bytes", MaxFileBytes)
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		l.diags.Add(path, 0, 0, "cannot read: %s", pathErr(err))
		return nil
	}
	f, err := yamlsrc.Parse(b)
	if err != nil {
		if p, ok := err.(*yamlsrc.Problem); ok {
			l.addProblems(path, []yamlsrc.Problem{*p})
		} else {
			l.diags.Add(path, 1, 1, "%s", err.Error())
		}
		return nil
	}
	return f
}

// rootPairs returns the entries of a file that must be a mapping (an empty file is an
// empty mapping).
func (l *loader) rootPairs(path string, f *yamlsrc.File, what string) ([]yamlsrc.Pair, bool) {
	root := yamlsrc.Resolve(f.Root)
	if yamlsrc.IsNull(root) {
		return nil, true
	}
	if root.Kind != yaml.MappingNode {
		l.add(path, root, "%s must be a mapping, got %s", what, yamlsrc.KindName(root))
		return nil, false
	}
	pairs, probs := yamlsrc.Pairs(root)
	l.addProblems(path, probs)
	return pairs, true
}

func (l *loader) unknownKey(path string, p yamlsrc.Pair, where, expected string) {
	l.add(path, p.KeyNode, "unknown key %q in %s (expected %s)", p.Key, where, expected)
}

// nameOrDescription reads a spec's name (kept when not empty) or description (checked,
// not kept).
func (l *loader) nameOrDescription(path string, p yamlsrc.Pair, name *string) {
	if s, _ := l.str(path, p); s != "" && p.Key == "name" {
		*name = s
	}
}

// str returns a scalar's text; ok is false when the value is not a string (reported).
// An empty string is a value like any other: callers that cannot take one say so.
func (l *loader) str(path string, p yamlsrc.Pair) (s string, ok bool) {
	n := yamlsrc.Resolve(p.Value)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		l.add(path, p.Value, "%s must be a string, got %s", p.Key, yamlsrc.KindName(p.Value))
		return "", false
	}
	return n.Value, true
}

func (l *loader) connector() *Connector {
	path := filepath.Join(l.dir, "spec.yml")
	c := &Connector{Key: l.key, Name: l.key, Dir: l.dir, Events: map[string]*Event{}, GlobalWebhooks: map[string]*GlobalWebhook{}}
	if !keyRe.MatchString(l.key) {
		l.diags.Add(filepath.Join(l.dir, "spec.yml"), 0, 0, "connector key %q (the folder name) must be letters, digits, '_', '-' or '.'", l.key)
	}
	f := l.readYAML(path)
	var authPair *yamlsrc.Pair
	if f != nil {
		pairs, _ := l.rootPairs(path, f, "a connector's spec.yml")
		for i, p := range pairs {
			switch p.Key {
			case "key":
				if k, ok := l.str(path, p); ok && k != l.key {
					l.add(path, p.Value, "key %q does not match the folder name %q", k, l.key)
				}
			case "name", "description":
				l.nameOrDescription(path, p, &c.Name)
			case "parametersSchema":
				c.ParametersSchema = l.schema(path, p)
			case "connectionParametersSchema":
				c.ConnectionParametersSchema = l.schema(path, p)
			case "credentialsSchema":
				c.CredentialsSchema = l.schema(path, p)
			case "api":
				l.api = l.apiBlock(path, f, p)
			case "auth":
				authPair = &pairs[i]
			default:
				l.unknownKey(path, p, "a connector's spec.yml", "key, name, description, parametersSchema, connectionParametersSchema, credentialsSchema, api, auth")
			}
		}
	}
	if authPair != nil {
		c.Auth = l.authBlock(path, f, *authPair)
	} else if isDir(filepath.Join(l.dir, authDir)) {
		l.diags.Add(filepath.Join(l.dir, authDir), 0, 0, "token requests (auth/) need an auth block of type oauth2 in spec.yml")
	}
	for _, key := range l.subdirs("events") {
		if key == ConnectionEventKey {
			l.diags.Add(filepath.Join(l.dir, "events", key), 0, 0, "event key %q is reserved: hookmap's connection events (connection.connected, connection.disconnected) carry it on the event stream", key)
			continue
		}
		if ev := l.event(key); ev != nil {
			c.Events[key] = ev
		}
	}
	for _, key := range l.subdirs("global-webhooks") {
		if gw := l.globalWebhook(key); gw != nil {
			c.GlobalWebhooks[key] = gw
		}
	}
	if l.diags.Len() > 0 {
		return nil
	}
	return c
}

// subdirs lists the folders inside l.dir/name (hidden ones skipped), sorted.
func (l *loader) subdirs(name string) []string {
	dir := filepath.Join(l.dir, name)
	if !isDir(dir) {
		if isFile(dir) {
			l.diags.Add(dir, 0, 0, "%s must be a folder", name)
		}
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.diags.Add(dir, 0, 0, "cannot read the folder: %s", pathErr(err))
		return nil
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !isDir(filepath.Join(dir, e.Name())) {
			continue
		}
		if !keyRe.MatchString(e.Name()) {
			l.diags.Add(filepath.Join(dir, e.Name()), 0, 0, "key %q (the folder name) must be letters, digits, '_', '-' or '.'", e.Name())
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// schema compiles a JSON Schema written under p; nil when absent or broken.
func (l *loader) schema(path string, p yamlsrc.Pair) *Schema {
	if yamlsrc.IsNull(p.Value) {
		return nil
	}
	doc, err := yamlsrc.Plain(p.Value)
	if err != nil {
		l.add(path, p.Value, "%s: %s", p.Key, err.Error())
		return nil
	}
	rel, _ := filepath.Rel(l.dir, path)
	s, probs := schema.Compile(l.key+"/"+filepath.ToSlash(rel)+"/"+p.Key, doc)
	for _, pr := range probs {
		n, _ := yamlsrc.NodeAt(p.Value, pr.Path)
		l.add(path, n, "%s: %s", p.Key, pr.Message)
	}
	return s
}

func (l *loader) compiler(path string, f *yamlsrc.File, vars []string) *mapping.Compiler {
	env, err := mapping.NewEnv(vars...)
	if err != nil {
		l.diags.Add(path, 1, 1, "%s", err.Error())
	}
	return &mapping.Compiler{Env: env, File: f, Path: path}
}

func (l *loader) apiBlock(path string, f *yamlsrc.File, p yamlsrc.Pair) *rest.API {
	n := yamlsrc.Resolve(p.Value)
	if yamlsrc.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.add(path, p.Value, "api must be a mapping with baseUri, headers, timeout")
		return nil
	}
	api := &rest.API{Timeout: rest.DefaultTimeout}
	pairs, probs := yamlsrc.Pairs(n)
	l.addProblems(path, probs)
	mc := l.compiler(path, f, connectionVars)
	for _, q := range pairs {
		switch q.Key {
		case "baseUri":
			api.BaseURI = mc.Compile(q.Value)
			if v, ok := api.BaseURI.Const(); ok {
				s, isStr := v.(string)
				if !isStr || !(strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")) {
					l.add(path, q.Value, "api.baseUri must be an http(s) URL or a formula")
				}
			}
		case "headers":
			api.Headers = mc.Compile(q.Value)
			if v, ok := api.Headers.Const(); ok && v != nil {
				if _, isMap := v.(map[string]any); !isMap {
					l.add(path, q.Value, "api.headers must be a mapping of header names to mapping values")
				}
			}
		case "timeout":
			d, err := rest.ParseTimeout(q.Value)
			if err != nil {
				l.add(path, q.Value, "api.%s", err.Error())
			}
			api.Timeout = d
		default:
			l.unknownKey(path, q, "api", "baseUri, headers, timeout")
		}
	}
	l.addProblems(path, mc.Problems)
	return api
}
