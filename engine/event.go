package engine

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/rest"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// methodDecl is a method declared in an event's spec.yml.
type methodDecl struct {
	name    string // canonical
	typ     ImplementationType
	keyNode *yaml.Node
	file    string
}

const (
	extMap  = ".map.yml"
	extRest = ".rest.yml"
)

func fileExt(t ImplementationType) string {
	if t == TypeRESTAPIMapping {
		return extRest
	}
	return extMap
}

func (l *loader) event(key string) *Event {
	dir := filepath.Join(l.dir, "events", key)
	path := filepath.Join(dir, "spec.yml")
	if !isFile(path) {
		l.diags.Add(dir, 0, 0, "an event folder needs a spec.yml")
		return nil
	}
	f := l.readYAML(path)
	if f == nil {
		return nil
	}
	ev := &Event{Key: key, Name: key, Methods: map[string]*Method{}}
	pairs, ok := l.rootPairs(path, f, "an event's spec.yml")
	if !ok {
		return nil
	}
	var methodsPair, verifyPair, listSchemaPair *yamlsrc.Pair
	typeOK := false
	for i, p := range pairs {
		switch p.Key {
		case "name", "description":
			l.nameOrDescription(path, p, &ev.Name)
		case "implementationType":
			s, ok := l.str(path, p)
			if !ok {
				break
			}
			switch t := ImplementationType(s); t {
			case TypeWebhook, TypeGlobalWebhook:
				ev.Type, typeOK = t, true
			default:
				l.add(path, p.Value, "implementationType of an event must be webhook or global-webhook, got %q", string(t))
			}
		case "parametersSchema":
			ev.ParametersSchema = l.schema(path, p)
		case "schema":
			ev.Schema = l.schema(path, p)
		case "listParametersSchema":
			ev.ListParametersSchema = l.schema(path, p)
			listSchemaPair = &pairs[i]
		case "verify":
			verifyPair = &pairs[i]
		case "methods":
			methodsPair = &pairs[i]
		default:
			l.unknownKey(path, p, "an event's spec.yml", "name, description, implementationType, parametersSchema, listParametersSchema, schema, verify, methods")
		}
	}
	if !typeOK {
		if !hasKey(pairs, "implementationType") {
			l.add(path, f.Root, "an event needs implementationType: webhook or global-webhook")
		}
		return nil
	}
	decls := l.methodDecls(path, f, ev.Type, methodsPair)
	if _, hasList := decls[MethodList]; listSchemaPair != nil && !hasList && ev.Type == TypeWebhook {
		l.add(path, listSchemaPair.KeyNode, "listParametersSchema describes the parameters of the list method, which this event does not declare")
	}
	if listSchemaPair != nil && ev.Type == TypeGlobalWebhook {
		l.add(path, listSchemaPair.KeyNode, "a global-webhook event has no list method, so no listParametersSchema")
	}
	l.methodFiles(dir, path, "methods", decls, allMethods)
	names := make([]string, 0, len(decls))
	for n := range decls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := decls[n]
		if d.file == "" {
			continue
		}
		if m := l.method(d.file, n, d.typ, methodVars(n)); m != nil {
			ev.Methods[n] = m
		}
	}
	if verifyPair != nil {
		ev.Verify = l.verify(path, f, *verifyPair, eventHandleVars())
	}
	ev.handleReads, ev.readsKnown = ev.HandleReads(), true
	return ev
}

func hasKey(pairs []yamlsrc.Pair, key string) bool {
	for _, p := range pairs {
		if p.Key == key {
			return true
		}
	}
	return false
}

// methodDecls reads the methods block and checks names, types and required methods.
func (l *loader) methodDecls(path string, f *yamlsrc.File, evType ImplementationType, mp *yamlsrc.Pair) map[string]*methodDecl {
	decls := map[string]*methodDecl{}
	allowed := methodsOf(evType)
	var at *yaml.Node = f.Root
	if mp != nil {
		at = mp.KeyNode
		n := yamlsrc.Resolve(mp.Value)
		if !yamlsrc.IsNull(n) && n.Kind != yaml.MappingNode {
			l.add(path, mp.Value, "methods must be a mapping of method name to {implementationType: mapping|rest-api-mapping}")
		}
		pairs, probs := yamlsrc.Pairs(n)
		l.addProblems(path, probs)
		for _, p := range pairs {
			name := canonicalMethod(p.Key)
			if !slices.Contains(allMethods, name) {
				l.add(path, p.KeyNode, "unknown method %q (methods of a %s event: %s)", p.Key, evType, strings.Join(allowed, ", "))
				continue
			}
			if !slices.Contains(allowed, name) {
				l.add(path, p.KeyNode, "a %s event has no %s method (its methods: %s)", evType, p.Key, strings.Join(allowed, ", "))
				continue
			}
			if _, dup := decls[name]; dup {
				l.add(path, p.KeyNode, "method %s is declared twice (getEventSelector is an alias of getEventsSelector)", name)
				continue
			}
			t, ok := l.methodType(path, p)
			if !ok {
				continue
			}
			if name == MethodHandle && t != TypeMapping {
				l.add(path, p.Value, "handle must be of implementationType mapping (it maps the request the app sent), not %s", t)
				continue
			}
			decls[name] = &methodDecl{name: name, typ: t, keyNode: p.KeyNode}
		}
	}
	var required []string
	if evType == TypeWebhook {
		required = []string{MethodSubscribe, MethodHandle}
	} else {
		required = []string{MethodGetEventsSelector}
	}
	for _, r := range required {
		if _, ok := decls[r]; !ok && !l.declaredButBroken(mp, r) {
			l.add(path, at, "a %s event needs a %s method", evType, r)
		}
	}
	return decls
}

// declaredButBroken reports whether name is written in the methods block (so a problem
// was reported for it already).
func (l *loader) declaredButBroken(mp *yamlsrc.Pair, name string) bool {
	if mp == nil {
		return false
	}
	pairs, _ := yamlsrc.Pairs(mp.Value)
	for _, p := range pairs {
		if canonicalMethod(p.Key) == name {
			return true
		}
	}
	return false
}

func (l *loader) methodType(path string, p yamlsrc.Pair) (ImplementationType, bool) {
	n := yamlsrc.Resolve(p.Value)
	if n == nil || n.Kind != yaml.MappingNode {
		l.add(path, p.Value, "method %s must be declared as {implementationType: mapping|rest-api-mapping}", p.Key)
		return "", false
	}
	pairs, probs := yamlsrc.Pairs(n)
	l.addProblems(path, probs)
	var t ImplementationType
	found := false
	for _, q := range pairs {
		switch q.Key {
		case "implementationType":
			found = true
			s, ok := l.str(path, q)
			if !ok {
				return "", false
			}
			t = ImplementationType(s)
			if t != TypeMapping && t != TypeRESTAPIMapping {
				l.add(path, q.Value, "implementationType of a method must be mapping or rest-api-mapping, got %q", string(t))
				return "", false
			}
		default:
			l.unknownKey(path, q, "a method declaration", "implementationType")
		}
	}
	if !found {
		l.add(path, p.KeyNode, "method %s needs implementationType: mapping or rest-api-mapping", p.Key)
		return "", false
	}
	return t, true
}

// methodFiles matches the files of a folder (an event's, or auth/) with the declarations
// written in spec's `where` block; known lists the method names the folder may hold.
func (l *loader) methodFiles(dir, spec, where string, decls map[string]*methodDecl, known []string) {
	entries, err := os.ReadDir(dir)
	if err != nil && !(os.IsNotExist(err) && where != "methods") {
		l.diags.Add(dir, 0, 0, "cannot read the folder: %s", pathErr(err))
		return
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		if !isFile(path) {
			continue
		}
		var base string
		var typ ImplementationType
		switch {
		case strings.HasSuffix(name, extMap):
			base, typ = strings.TrimSuffix(name, extMap), TypeMapping
		case strings.HasSuffix(name, extRest):
			base, typ = strings.TrimSuffix(name, extRest), TypeRESTAPIMapping
		case strings.HasSuffix(name, ".map.yaml") || strings.HasSuffix(name, ".rest.yaml"):
			l.diags.Add(path, 1, 1, "method files end in .yml: rename to %s", strings.TrimSuffix(name, ".yaml")+".yml")
			continue
		default:
			continue
		}
		mname := canonicalMethod(base)
		if !slices.Contains(known, mname) {
			l.diags.Add(path, 1, 1, "unknown method %q: method files are <method>.map.yml or <method>.rest.yml, method one of %s", base, strings.Join(known, ", "))
			continue
		}
		d, ok := decls[mname]
		if !ok {
			l.diags.Add(path, 1, 1, "method file without a declaration: add %s: {implementationType: %s} to %s in spec.yml", base, typeOfExt(typ), where)
			continue
		}
		if d.typ != typ {
			l.diags.Add(path, 1, 1, "method %s is declared as implementationType %s, so its file is %s%s, not %s", base, d.typ, base, fileExt(d.typ), name)
			d.file = "-" // reported; do not also report it missing
			continue
		}
		if d.file != "" {
			l.diags.Add(path, 1, 1, "method %s has two files (%s and %s)", mname, filepath.Base(d.file), name)
			continue
		}
		d.file = path
	}
	for _, d := range decls {
		if d.file == "" {
			rel, _ := filepath.Rel(filepath.Dir(spec), filepath.Join(dir, d.name+fileExt(d.typ)))
			l.add(spec, d.keyNode, "missing method file %s", filepath.ToSlash(rel))
		}
		if d.file == "-" {
			d.file = ""
		}
	}
}

func typeOfExt(t ImplementationType) string { return string(t) }

// method compiles one method file.
func (l *loader) method(path, name string, typ ImplementationType, vars []string) *Method {
	f := l.readYAML(path)
	if f == nil {
		return nil
	}
	m := &Method{Key: name, Type: typ, File: path, Vars: sortedVars(vars), api: l.api}
	if typ == TypeRESTAPIMapping {
		rm, probs := rest.Compile(f, path, vars)
		l.addProblems(path, probs)
		m.rest = rm
		return m
	}
	mc := l.compiler(path, f, vars)
	m.mapping = mc.Compile(f.Root)
	l.addProblems(path, mc.Problems)
	return m
}

func (l *loader) globalWebhook(key string) *GlobalWebhook {
	dir := filepath.Join(l.dir, "global-webhooks", key)
	path := filepath.Join(dir, "spec.yml")
	gw := &GlobalWebhook{Key: key, Name: key}
	var f *yamlsrc.File
	if isFile(path) {
		f = l.readYAML(path)
	} else {
		l.diags.Add(dir, 0, 0, "a global webhook folder needs a spec.yml")
	}
	if f != nil {
		pairs, _ := l.rootPairs(path, f, "a global webhook's spec.yml")
		for _, p := range pairs {
			switch p.Key {
			case "name", "description":
				l.nameOrDescription(path, p, &gw.Name)
			case "verify":
				gw.Verify = l.verify(path, f, p, globalHandleVars())
			default:
				l.unknownKey(path, p, "a global webhook's spec.yml", "name, description, verify")
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.diags.Add(dir, 0, 0, "cannot read the folder: %s", pathErr(err))
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		if name == "handle"+extMap || !isFile(p) {
			continue
		}
		if strings.HasSuffix(name, extMap) || strings.HasSuffix(name, extRest) || strings.HasSuffix(name, ".map.yaml") || strings.HasSuffix(name, ".rest.yaml") {
			l.diags.Add(p, 1, 1, "a global webhook has one method file, handle.map.yml (a mapping from the request to {events: [{selector, payload}]})")
		}
	}
	hp := filepath.Join(dir, "handle"+extMap)
	if !isFile(hp) {
		l.diags.Add(hp, 0, 0, "missing method file handle.map.yml of global webhook %s", key)
		return gw
	}
	gw.Handle = l.method(hp, MethodHandle, TypeMapping, globalHandleVars())
	return gw
}
