// Package engine loads hookmap connectors from disk and runs their methods.
//
// Load reads folders in the layout of DESIGN.md §4 (spec.yml, events/<key>/spec.yml with
// <method>.map.yml and <method>.rest.yml files, global-webhooks/<key>/spec.yml with
// handle.map.yml), compiles every formula once, and reports every problem as a
// Diagnostic (file:line:col: message). Connectors with problems are left out of the Set.
//
// A connector's auth block (Auth) says how its connections get credentials: static (as
// given) or oauth2, whose token requests are rest-api-mapping files under auth/ named after
// their grant (authorizationCode, refreshToken, clientCredentials) and whose authorize
// block builds the app's authorization URL. RunOptions.Reauth lets the caller renew the
// credentials when a request is answered 401; the request is then sent again.
//
// Method.Run evaluates a compiled method with plain Go values (see engine/value) as its
// variables. The engine has no storage and no servers; rest-api-mapping methods make their
// HTTP calls through the client given in RunOptions.
//
// The work is split into small packages: engine/yamlsrc (YAML with positions),
// engine/mapping (mapping values and formulas), engine/celfn (hookmap's CEL library),
// engine/jmes (the JMESPath bridge), engine/schema (JSON Schema), engine/rest
// (rest-api-mapping) and engine/diag (diagnostics).
package engine
