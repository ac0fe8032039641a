package engine

import (
	"cmp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/rest"
	"github.com/hookmap/hookmap/engine/verify"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

func (l *loader) verify(path string, f *yamlsrc.File, p yamlsrc.Pair, vars []string) *Verify {
	n := yamlsrc.Resolve(p.Value)
	if yamlsrc.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.add(path, p.Value, "verify must be {scheme: ..., secret: ...} or {$cel: BOOL}")
		return nil
	}
	pairs, probs := yamlsrc.Pairs(n)
	l.addProblems(path, probs)
	mc := l.compiler(path, f, vars)
	defer func() { l.addProblems(path, mc.Problems) }()
	if len(pairs) == 1 && pairs[0].Key == mapping.KeyCEL {
		cond := mc.CompileCEL(pairs[0].Value, true)
		if cond == nil {
			return nil
		}
		return &Verify{Config: verify.Config{Scheme: "cel"}, Vars: sortedVars(vars), cond: cond}
	}
	v := &Verify{Config: verify.Config{Tolerance: verify.DefaultTolerance}, Vars: sortedVars(vars)}
	var schemeNode, secretKey *yaml.Node
	nodes := map[string]*yaml.Node{} // where a problem of a key is reported
	for _, q := range pairs {
		switch q.Key {
		case "scheme", "header", "algorithm", "encoding", "prefix":
			nodes[q.Key] = q.KeyNode
			str, ok := l.str(path, q)
			if !ok {
				return nil
			}
			switch q.Key {
			case "scheme":
				v.Scheme, schemeNode = str, q.Value
			case "header":
				v.Header = str
			case "algorithm":
				v.Algorithm = strings.ToLower(str)
			case "encoding":
				v.Encoding = strings.ToLower(str)
			case "prefix":
				v.Prefix = str
			}
		case "skipWhen":
			v.skip = l.skipWhen(path, mc, q)
		case "secret":
			secretKey = q.KeyNode
			if !yamlsrc.IsNull(q.Value) {
				v.secret = mc.Compile(q.Value)
			}
		case "tolerance":
			d, err := rest.ParseDuration(q.Value, "tolerance")
			if err != nil {
				l.add(path, q.Value, "verify %s", err.Error())
			} else {
				v.Tolerance = d
			}
		default:
			if strings.HasPrefix(q.Key, "$") {
				l.add(path, q.KeyNode, "verify is either {scheme: ..., secret: ...} or {$cel: BOOL} alone; %s is not supported here", q.Key)
				continue
			}
			l.unknownKey(path, q, "verify", "scheme, secret, header, algorithm, encoding, prefix, tolerance, skipWhen, or {$cel: BOOL}")
		}
	}
	if schemeNode == nil {
		l.add(path, p.KeyNode, "verify needs a scheme (%s) or the form {$cel: BOOL}", strings.Join(verify.Schemes, ", "))
		return nil
	}
	if !slices.Contains(verify.Schemes, v.Scheme) {
		l.add(path, schemeNode, "unknown verify scheme %q (supported: %s, or write verify as {$cel: BOOL})", v.Scheme, strings.Join(verify.Schemes, ", "))
		return nil
	}
	if v.secret == nil {
		at := p.KeyNode
		if secretKey != nil {
			at = secretKey
		}
		l.add(path, at, "verify scheme %s needs a secret (a mapping value, e.g. {$cel: state.secret})", v.Scheme)
	}
	// The scheme's own rules (hmac's and token's header, hmac's algorithm and encoding;
	// keys of other schemes).
	for _, pr := range v.Config.Problems() {
		at := nodes[pr.Field]
		if at == nil || (pr.Field == "header" && (v.Scheme == "hmac" || v.Scheme == "token")) {
			at = p.KeyNode
		}
		l.add(path, at, "%s", pr.Message)
	}
	if v.Scheme == "hmac" {
		v.Algorithm = cmp.Or(v.Algorithm, "sha256")
		v.Encoding = cmp.Or(v.Encoding, "hex")
	}
	return v
}

// skipWhen compiles verify.skipWhen: {$cel: BOOL} over the handle's variables.
func (l *loader) skipWhen(path string, mc *mapping.Compiler, q yamlsrc.Pair) *mapping.CEL {
	n := yamlsrc.Resolve(q.Value)
	pairs, _ := yamlsrc.Pairs(n)
	if n == nil || n.Kind != yaml.MappingNode || len(pairs) != 1 || pairs[0].Key != mapping.KeyCEL {
		l.add(path, q.Value, "verify skipWhen must be {$cel: BOOL}, a condition over the handle's variables (e.g. {$cel: '\"x-hook-secret\" in headers && !has(state.hookSecret)'})")
		return nil
	}
	return mc.CompileCEL(pairs[0].Value, true)
}
