// Package oauth holds the OAuth 2.0 pieces of hookmap that need no storage and no
// connector: state parameters (RFC 6749 §10.12) and PKCE verifiers (RFC 7636), reading
// the credentials a token request returned and merging them over the previous ones, and
// a Redactor that takes secret values out of messages.
package oauth
