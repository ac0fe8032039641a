// Package console serves hookmap's web console under /console/ on the HTTP port: static
// assets embedded in the binary (hand-written HTML, CSS and JavaScript modules; no build
// step, no CDN, nothing fetched from elsewhere) that call the JSON API (package jsonapi)
// with the caller's token.
//
// Every response carries a strict Content-Security-Policy (scripts and styles from the
// console's own origin only, no inline script, no framing) and the pages render every
// value as text (textContent), never as HTML. The token is kept in sessionStorage (this
// tab) unless the user ticks "remember" (then localStorage), and is sent only in the
// Authorization header, never in a URL. /console/config.json tells the page whether the
// server requires a token (dev mode does not).
package console
