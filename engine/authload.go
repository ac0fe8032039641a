package engine

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/rest"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// authDir is the folder of an oauth2 connector's token requests.
const authDir = "auth"

// authMethodVars are the variables of a token request.
func authMethodVars(name string) []string {
	if name == AuthAuthorizationCode {
		return with(connectionVars, "code", "codeVerifier", "redirectUri", "callback")
	}
	return with(connectionVars)
}

// authorizeVars are the variables of the authorize block: no credentials, since the URL
// is handed to a browser.
var authorizeVars = []string{"connection", "connectorParameters"}

const authKeys = "type, api, authorize, refreshBefore, grantRevoked, methods"

// authBlock reads the auth block of spec.yml and compiles the token requests under auth/.
// A static block is nil.
func (l *loader) authBlock(path string, f *yamlsrc.File, p yamlsrc.Pair) *Auth {
	n := yamlsrc.Resolve(p.Value)
	if yamlsrc.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.add(path, p.Value, "auth must be a mapping with type: static or oauth2 (%s)", authKeys)
		return nil
	}
	pairs, probs := yamlsrc.Pairs(n)
	l.addProblems(path, probs)
	a := &Auth{Type: AuthStatic, RefreshBefore: DefaultRefreshBefore, Methods: map[string]*Method{}}
	var typeNode *yaml.Node
	other := map[string]yamlsrc.Pair{}
	for _, q := range pairs {
		switch q.Key {
		case "type":
			s, ok := l.str(path, q)
			if !ok {
				return nil
			}
			switch AuthType(s) {
			case AuthStatic, AuthOAuth2:
				a.Type, typeNode = AuthType(s), q.Value
			default:
				l.add(path, q.Value, "auth type must be static or oauth2, got %q", s)
				return nil
			}
		case "api", "authorize", "refreshBefore", "grantRevoked", "methods":
			other[q.Key] = q
		default:
			l.unknownKey(path, q, "auth", authKeys)
		}
	}
	if typeNode == nil {
		l.add(path, p.KeyNode, "auth needs a type: static (credentials as given) or oauth2")
		return nil
	}
	if a.Type == AuthStatic {
		for _, k := range sortedKeys(other) {
			l.add(path, other[k].KeyNode, "%s belongs to an auth block of type oauth2; a static one has only type", k)
		}
		if isDir(filepath.Join(l.dir, authDir)) {
			l.diags.Add(filepath.Join(l.dir, authDir), 0, 0, "token requests (auth/) need an auth block of type oauth2")
		}
		return nil
	}
	var api *rest.API
	if q, ok := other["api"]; ok {
		api = l.apiBlock(path, f, q)
	}
	if q, ok := other["refreshBefore"]; ok {
		d, err := rest.ParseDuration(q.Value, "refreshBefore")
		if err != nil {
			l.add(path, q.Value, "auth.%s", err.Error())
		} else {
			a.RefreshBefore = d
		}
	}
	if q, ok := other["grantRevoked"]; ok {
		a.revoked = l.grantRevoked(path, f, q)
	}
	decls := l.authMethodDecls(path, p.KeyNode, other)
	l.methodFiles(filepath.Join(l.dir, authDir), path, "auth.methods", decls, authMethods)
	for _, name := range sortedKeys(decls) {
		d := decls[name]
		if d.file == "" {
			continue
		}
		m := l.method(d.file, name, d.typ, authMethodVars(name))
		if m == nil {
			continue
		}
		m.api = api
		if m.rest != nil && m.rest.ResponseMapping == nil {
			m.rest.ResponseMapping = l.defaultTokenResponse(d.file, name)
		}
		a.Methods[name] = m
	}
	q, hasAuthorize := other["authorize"]
	hasCode := false
	if mp, ok := other["methods"]; ok {
		hasCode = l.declaredButBroken(&mp, AuthAuthorizationCode)
	}
	if hasAuthorize {
		a.Authorize = l.authorize(path, f, q)
	}
	switch {
	case hasAuthorize && hasCode:
	case hasAuthorize:
		l.add(path, q.KeyNode, "authorize is for the authorization code grant: declare the authorizationCode token request in auth.methods too")
	case hasCode:
		l.add(path, p.KeyNode, "the authorizationCode token request needs an authorize block (uri, clientId, scopes) to build the authorization URL")
	}
	return a
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// authMethodDecls reads auth.methods: which token requests the connector has.
func (l *loader) authMethodDecls(path string, at *yaml.Node, other map[string]yamlsrc.Pair) map[string]*methodDecl {
	decls := map[string]*methodDecl{}
	mp, ok := other["methods"]
	if !ok {
		l.add(path, at, "an oauth2 auth block needs methods: its token requests (%s), each {implementationType: rest-api-mapping}", strings.Join(authMethods, ", "))
		return decls
	}
	n := yamlsrc.Resolve(mp.Value)
	if yamlsrc.IsNull(n) || n.Kind != yaml.MappingNode {
		l.add(path, mp.Value, "auth.methods must be a mapping of token request name (%s) to {implementationType: rest-api-mapping}", strings.Join(authMethods, ", "))
		return decls
	}
	pairs, probs := yamlsrc.Pairs(n)
	l.addProblems(path, probs)
	for _, q := range pairs {
		if !slices.Contains(authMethods, q.Key) {
			l.add(path, q.KeyNode, "unknown token request %q (token requests are named after their grant: %s)", q.Key, strings.Join(authMethods, ", "))
			continue
		}
		t, ok := l.methodType(path, q)
		if !ok {
			continue
		}
		if t != TypeRESTAPIMapping {
			l.add(path, q.Value, "token request %s must be of implementationType rest-api-mapping (it calls the app's token endpoint), not %s", q.Key, t)
			continue
		}
		decls[q.Key] = &methodDecl{name: q.Key, typ: t, keyNode: q.KeyNode}
	}
	if len(pairs) == 0 {
		l.add(path, mp.KeyNode, "auth.methods declares no token request (%s)", strings.Join(authMethods, ", "))
	}
	return decls
}

const authorizeKeys = "uri, clientId, scopes, scopeSeparator, query, pkce"

// authorize reads the authorize block.
func (l *loader) authorize(path string, f *yamlsrc.File, p yamlsrc.Pair) *Authorize {
	n := yamlsrc.Resolve(p.Value)
	if yamlsrc.IsNull(n) || n.Kind != yaml.MappingNode {
		l.add(path, p.Value, "authorize must be a mapping (%s)", authorizeKeys)
		return nil
	}
	pairs, probs := yamlsrc.Pairs(n)
	l.addProblems(path, probs)
	a := &Authorize{PKCE: true, scopeSeparator: " "}
	mc := l.compiler(path, f, authorizeVars)
	defer func() { l.addProblems(path, mc.Problems) }()
	for _, q := range pairs {
		switch q.Key {
		case "uri":
			a.uri = mc.Compile(q.Value)
			if v, ok := a.uri.Const(); ok {
				s, isStr := v.(string)
				if !isStr || !(strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")) {
					l.add(path, q.Value, "authorize.uri must be an absolute http(s) URL or a formula")
				}
			}
		case "clientId":
			a.clientID = mc.Compile(q.Value)
		case "scopes":
			a.scopes = mc.Compile(q.Value)
			if v, ok := a.scopes.Const(); ok {
				switch v.(type) {
				case nil, string, []any:
				default:
					l.add(path, q.Value, "authorize.scopes must be a list of scopes, a string or a formula")
				}
			}
		case "scopeSeparator":
			if s, ok := l.str(path, q); ok {
				a.scopeSeparator = s
			}
		case "query":
			a.query = mc.Compile(q.Value)
			if v, ok := a.query.Const(); ok && v != nil {
				if _, isMap := v.(map[string]any); !isMap {
					l.add(path, q.Value, "authorize.query must be a mapping of parameter names to mapping values")
				}
			}
		case "pkce":
			b, ok := boolScalar(q.Value)
			if !ok {
				l.add(path, q.Value, "authorize.pkce must be true or false")
			}
			a.PKCE = b
		default:
			l.unknownKey(path, q, "authorize", authorizeKeys)
		}
	}
	if a.uri == nil {
		l.add(path, p.KeyNode, "authorize needs a uri: the app's authorization endpoint")
	}
	if a.clientID == nil {
		a.clientID = mc.Compile(&yaml.Node{Kind: yaml.MappingNode, Line: p.KeyNode.Line, Column: p.KeyNode.Column, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: mapping.KeyCEL},
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: "connectorParameters.?clientId.orValue(\"\")"},
		}})
	}
	return a
}

func boolScalar(n *yaml.Node) (bool, bool) {
	r := yamlsrc.Resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() != "!!bool" {
		return false, false
	}
	return r.Value == "true", true
}

// grantRevoked compiles auth.grantRevoked, a {$cel: BOOL} over the failed token request.
func (l *loader) grantRevoked(path string, f *yamlsrc.File, p yamlsrc.Pair) *mapping.CEL {
	n := yamlsrc.Resolve(p.Value)
	pairs, _ := yamlsrc.Pairs(n)
	if n == nil || n.Kind != yaml.MappingNode || len(pairs) != 1 || pairs[0].Key != mapping.KeyCEL {
		l.add(path, p.Value, "auth.grantRevoked must be {$cel: BOOL}, a condition over response (the failed token request's statusCode, headers and data)")
		return nil
	}
	mc := l.compiler(path, f, with(connectionVars, "response"))
	c := mc.CompileCEL(pairs[0].Value, true)
	l.addProblems(path, mc.Problems)
	return c
}

// defaultTokenResponse compiles the standard token response mapping for a token request
// file that has no responseMapping.
func (l *loader) defaultTokenResponse(file, name string) *mapping.Value {
	f, err := yamlsrc.Parse([]byte(defaultTokenResponse))
	if err != nil {
		l.diags.Add(file, 1, 1, "internal error: default token response: %s", err)
		return nil
	}
	mc := l.compiler(file+" (default responseMapping)", f, with(authMethodVars(name), "response", "responses"))
	v := mc.Compile(f.Root)
	l.addProblems(file, mc.Problems)
	return v
}
