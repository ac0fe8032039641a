// Package receiver is hookmap's HTTP receiver: the hook URLs external apps call
// ({public-url}/hooks/{subscriptionId} and /hooks/g/{globalWebhookId}) with their limits,
// plus the health and metrics endpoints.
package receiver
