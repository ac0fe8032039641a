// Package verify checks the signatures that webhook senders put on their
// deliveries (DESIGN.md §6) and computes them for tests and outgoing webhooks.
//
// Each built-in scheme follows its provider's documentation: github
// (X-Hub-Signature-256), stripe (Stripe-Signature), slack (X-Slack-Signature),
// shopify (X-Shopify-Hmac-Sha256), standard-webhooks (webhook-id,
// webhook-timestamp, webhook-signature), hubspot (X-HubSpot-Signature-v3), zoom
// (x-zm-signature v0), trello (X-Trello-Webhook), twilio (X-Twilio-Signature), a
// configurable hmac scheme and token (a shared secret in a header, GitLab's
// X-Gitlab-Token). Check is pure: it reads only its arguments, compares
// signatures in constant time, and its failures never carry the secret or the
// expected signature.
package verify
