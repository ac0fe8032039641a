// Package netguard is hookmap's outbound HTTP client with an SSRF guard: connections to
// loopback, private, link-local and other internal addresses are refused unless the server
// runs with --allow-private-networks. The check is on the address actually dialed, so DNS
// rebinding and redirects cannot get around it.
package netguard
