// Package webhookfile reads the server's webhooks file (--webhooks): outgoing webhook
// registrations an operator declares in YAML or JSON, in the shape of the plugin webhook
// format (id, url, method, headers, queryParams, payload_encoding) with hookmap's own
// fields beside them, and applies them to the store at start and on every reload.
//
// Every problem is reported as file:line:col, like connectors. Secrets stay out of the
// file: ${env:NAME} in a url, a header value or a signing secret is replaced by the
// environment variable NAME. A Loader makes the stored declared webhooks match the file:
// new entries are registered, changed ones replaced, removed ones deleted; an entry with
// problems keeps its previous version.
package webhookfile
