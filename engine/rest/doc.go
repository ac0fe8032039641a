// Package rest compiles and runs methods of implementationType rest-api-mapping: one HTTP
// request (or a list of requests with keys and `when` conditions) built from mapping
// values, sent through a caller-supplied HTTP client (the executor seam: the server
// passes an SSRF-guarded client), and a responseMapping over the responses.
//
// Request bodies are JSON unless dataEncoding is form. Form encoding follows the
// Rails/PHP/Stripe convention: nested maps as k[sub]=v, lists of scalars as repeated
// k[]=v, lists of maps as k[0][sub]=v; null values are left out.
package rest
