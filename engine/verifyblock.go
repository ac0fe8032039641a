package engine

import (
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/rest"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// DefaultTolerance is the accepted clock skew of timestamped verify schemes.
const DefaultTolerance = 5 * time.Minute

// Verify schemes.
var verifySchemes = []string{"github", "stripe", "slack", "shopify", "standard-webhooks", "hubspot", "hmac"}

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
		return &Verify{Scheme: "cel", Tolerance: DefaultTolerance, cond: cond}
	}
	v := &Verify{Tolerance: DefaultTolerance}
	var schemeNode, secretKey *yaml.Node
	hmacOnly := map[string]*yaml.Node{}
	for _, q := range pairs {
		switch q.Key {
		case "scheme":
			v.Scheme, schemeNode = l.str(path, q), q.Value
		case "secret":
			secretKey = q.KeyNode
			if !yamlsrc.IsNull(q.Value) {
				v.secret = mc.Compile(q.Value)
			}
		case "header":
			v.Header, hmacOnly[q.Key] = l.str(path, q), q.KeyNode
		case "algorithm":
			v.Algorithm, hmacOnly[q.Key] = strings.ToLower(l.str(path, q)), q.KeyNode
		case "encoding":
			v.Encoding, hmacOnly[q.Key] = strings.ToLower(l.str(path, q)), q.KeyNode
		case "prefix":
			v.Prefix, hmacOnly[q.Key] = l.str(path, q), q.KeyNode
		case "tolerance":
			d, err := rest.ParseTimeout(q.Value)
			if err != nil {
				l.add(path, q.Value, "verify %s", strings.Replace(err.Error(), "timeout", "tolerance", 1))
			} else {
				v.Tolerance = d
			}
		default:
			if strings.HasPrefix(q.Key, "$") {
				l.add(path, q.KeyNode, "verify is either {scheme: ..., secret: ...} or {$cel: BOOL} alone; %s is not supported here", q.Key)
				continue
			}
			l.unknownKey(path, q, "verify", "scheme, secret, header, algorithm, encoding, prefix, tolerance, or {$cel: BOOL}")
		}
	}
	switch {
	case schemeNode == nil:
		l.add(path, p.KeyNode, "verify needs a scheme (%s) or the form {$cel: BOOL}", strings.Join(verifySchemes, ", "))
		return nil
	case v.Scheme == "":
		return nil
	case !contains(verifySchemes, v.Scheme):
		l.add(path, schemeNode, "unknown verify scheme %q (supported: %s, or write verify as {$cel: BOOL})", v.Scheme, strings.Join(verifySchemes, ", "))
		return nil
	}
	if v.secret == nil {
		at := p.KeyNode
		if secretKey != nil {
			at = secretKey
		}
		l.add(path, at, "verify scheme %s needs a secret (a mapping value, e.g. {$cel: state.secret})", v.Scheme)
	}
	if v.Scheme == "hmac" {
		if v.Header == "" {
			l.add(path, p.KeyNode, "verify scheme hmac needs header (the request header holding the signature)")
		}
		if v.Algorithm == "" {
			v.Algorithm = "sha256"
		} else if !contains([]string{"sha1", "sha256", "sha512"}, v.Algorithm) {
			l.add(path, hmacOnly["algorithm"], "verify algorithm must be sha1, sha256 or sha512, got %q", v.Algorithm)
		}
		if v.Encoding == "" {
			v.Encoding = "hex"
		} else if !contains([]string{"hex", "base64"}, v.Encoding) {
			l.add(path, hmacOnly["encoding"], "verify encoding must be hex or base64, got %q", v.Encoding)
		}
	} else {
		for _, k := range []string{"header", "algorithm", "encoding", "prefix"} {
			if n, ok := hmacOnly[k]; ok {
				l.add(path, n, "verify %s applies to scheme hmac only, not %s", k, v.Scheme)
			}
		}
	}
	return v
}
