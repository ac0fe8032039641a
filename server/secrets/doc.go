// Package secrets encrypts what hookmap keeps secret at rest (connection credentials,
// connector parameters, webhook secrets) with AES-256-GCM, and makes unguessable tokens.
package secrets
