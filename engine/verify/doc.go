// Package verify checks the signatures that webhook senders put on their
// deliveries (DESIGN.md §6) and computes them for tests and outgoing webhooks.
//
// Each built-in scheme follows its provider's documentation: github
// (X-Hub-Signature-256), stripe (Stripe-Signature), slack (X-Slack-Signature),
// shopify (X-Shopify-Hmac-Sha256), standard-webhooks (webhook-id,
// webhook-timestamp, webhook-signature), hubspot (X-HubSpot-Signature-v3) and a
// configurable hmac scheme. Check is pure: it reads only its arguments, compares
// signatures in constant time, and its failures never carry the secret or the
// expected signature.
package verify
