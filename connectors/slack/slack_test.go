package slack_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/engine"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

var (
	acme   = team{ID: "T0ACME0001", Name: "Acme", Domain: "acme", BotID: "B0ACMEBOT1", UserID: "U0ACMEBOT1"}
	globex = team{ID: "T0GLOBEX02", Name: "Globex", Domain: "globex", BotID: "B0GLOBEX02", UserID: "U0GLOBEX02"}
	// initech installed the app too, but has no connection here.
	initech = team{ID: "T0INITECH3", Name: "Initech", Domain: "initech", BotID: "B0INITECH3", UserID: "U0INITECH3"}

	tokenAcme   = "xoxb-1111111111-2222222222222-AcmeBotTokenAcmeBotToken"
	tokenGlobex = "xoxb-3333333333-4444444444444-GlobexBotTokenGlobexBot"
)

type world struct {
	t    *testing.T
	h    *apptest.Harness
	fake *fakeSlack
	url  string // the global webhook URL: the app's Request URL
}

// start runs hookmap with the bundled connectors and the app's signing secret set, and a
// fake Slack where tokenAcme belongs to acme and tokenGlobex to globex.
func start(t *testing.T) *world {
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate())
	w := &world{t: t, h: h, fake: newFakeSlack(t, map[string]team{tokenAcme: acme, tokenGlobex: globex})}
	h.SetConnectorParameters("slack", map[string]any{"signingSecret": signingSecret})
	w.url = h.GlobalWebhookURL("slack", "events")
	require.Regexp(t, `^`+h.BaseURL+`/hooks/g/[A-Za-z0-9_-]{20,}$`, w.url)
	return w
}

func (w *world) connection(token string) *hookmapv1.Connection {
	w.t.Helper()
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "slack", Name: "workspace of " + token[:15],
		Parameters:  apptest.Struct(w.t, map[string]any{"baseUri": w.fake.URL()}),
		Credentials: apptest.Struct(w.t, map[string]any{"botToken": token}),
	})
	require.NoError(w.t, err)
	return conn
}

func (w *world) subscribe(conn *hookmapv1.Connection, params map[string]any) *hookmapv1.Subscription {
	w.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "events", Parameters: apptest.Struct(w.t, params),
	})
	require.NoError(w.t, err)
	require.Equal(w.t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	return sub
}

func (w *world) deliveries(outcome hookmapv1.DeliveryOutcome) []*hookmapv1.Delivery {
	w.t.Helper()
	dl, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{Outcome: outcome, PageSize: 100})
	require.NoError(w.t, err)
	return dl.GetDeliveries()
}

func (w *world) storedEvents() []*hookmapv1.Event {
	w.t.Helper()
	evs, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{PageSize: 1000})
	require.NoError(w.t, err)
	return evs.GetEvents()
}

func record(e *hookmapv1.Event) map[string]any { return e.GetRecord().GetStructValue().AsMap() }

// asStruct is v as a Struct holds it (numbers as float64).
func asStruct(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	s, err := structpb.NewStruct(v)
	require.NoError(t, err)
	return s.AsMap()
}

func TestURLVerificationIsAnswered(t *testing.T) {
	w := start(t)
	challenge := "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
	body := mustJSON(t, map[string]any{"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"})

	// Slack sends the challenge when the Request URL is set, before any workspace is connected.
	r := w.fake.post(w.url, delivery{Body: body})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Equal(t, challenge, r.Body, "the challenge comes back as is")
	require.True(t, strings.HasPrefix(r.ContentType, "text/plain"), r.ContentType)
	require.Empty(t, w.storedEvents())

	// It is signed like every request: a wrong signature gets no challenge.
	r = w.fake.post(w.url, delivery{Body: body, Secret: "not-the-signing-secret"})
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.NotContains(t, r.Body, challenge)
	require.Empty(t, w.fake.Calls(), "answering a challenge asks Slack nothing")
}

func TestSubscribeTakesTheTeamFromAuthTest(t *testing.T) {
	w := start(t)
	conn := w.connection(tokenAcme)
	sub := w.subscribe(conn, nil)
	require.Equal(t, []string{"POST /api/auth.test Bearer " + tokenAcme}, w.fake.Calls())
	require.Equal(t, w.url, sub.GetWebhookUri(), "a global-webhook subscription's URL is the app's Request URL")

	// A retried CreateSubscription (same request_id) is the same subscription, made once.
	req := &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "events", RequestId: "create-events-1"}
	first, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), req)
	require.NoError(t, err)
	again, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), req)
	require.NoError(t, err)
	require.Equal(t, first.GetId(), again.GetId())
	require.NotEqual(t, sub.GetId(), first.GetId())
	subs, err := w.h.Subscriptions.ListSubscriptions(w.h.Ctx(), &hookmapv1.ListSubscriptionsRequest{ConnectionId: conn.GetId()})
	require.NoError(t, err)
	require.Len(t, subs.GetSubscriptions(), 2)

	// One event of the workspace reaches each of its two subscriptions exactly once.
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	r := w.fake.send(w.url, envelope(acme, "Ev0RETRYID1", message("C0GENERAL1", "U0ALICE001", "hi", "1700000000.000100")))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	got := map[string]bool{}
	for _, e := range stream.Next(2) {
		got[e.GetSubscriptionId()] = true
	}
	require.Equal(t, map[string]bool{sub.GetId(): true, first.GetId(): true}, got)
	stream.None(200 * time.Millisecond)
}

func TestSlackErrorsFailTheSubscription(t *testing.T) {
	w := start(t)

	// A token Slack does not know: HTTP 200 with {"ok": false, "error": "invalid_auth"}.
	bad := w.connection("xoxb-0000000000-0000000000000-NotAKnownBotTokenAtAll")
	_, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: bad.GetId(), EventKey: "events"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "auth.test: invalid_auth")
	require.Equal(t, []string{"POST /api/auth.test Bearer xoxb-0000000000-0000000000000-NotAKnownBotTokenAtAll"}, w.fake.Calls())

	// A revoked one names its own error.
	w.fake.Revoke(tokenGlobex)
	revoked := w.connection(tokenGlobex)
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: revoked.GetId(), EventKey: "events"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "auth.test: token_revoked")

	// No subscription routes anything afterwards: an event of that team is unmatched.
	r := w.fake.send(w.url, envelope(globex, "Ev0REVOKED1", message("C0GENERAL1", "U0BOB00001", "x", "1700000000.000200")))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Len(t, w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNMATCHED), 1)

	// The credentials and the subscription parameters are checked before Slack is asked.
	_, err = w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "slack", Name: "no token", Parameters: apptest.Struct(t, map[string]any{"baseUri": w.fake.URL()}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "botToken")
	good := w.connection(tokenAcme)
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: good.GetId(), EventKey: "events", Parameters: apptest.Struct(t, map[string]any{"eventTypes": "message"}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "eventTypes")
}

func TestEventsOfTwoTeamsGoToTheirConnections(t *testing.T) {
	w := start(t)
	connA, connB := w.connection(tokenAcme), w.connection(tokenGlobex)
	subA, subB := w.subscribe(connA, nil), w.subscribe(connB, nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})

	msgA := message("C0ACMEGEN1", "U0ALICE001", "Hello from Acme", "1700000001.000100")
	r := w.fake.send(w.url, envelope(acme, "Ev0ACME0001", msgA))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.JSONEq(t, `{"received": 1}`, r.Body)
	e := stream.Next(1)[0]
	require.Equal(t, subA.GetId(), e.GetSubscriptionId())
	require.Equal(t, connA.GetId(), e.GetConnectionId())
	require.Equal(t, "events", e.GetEventKey())
	require.Equal(t, "message", e.GetType())
	require.Equal(t, "Ev0ACME0001", e.GetExternalId())
	require.Equal(t, asStruct(t, msgA), record(e), "the record is Slack's inner event")
	stream.None(200 * time.Millisecond)

	// A message with a subtype (someone joined a channel) of the other team: type.subtype.
	join := message("C0GLOBEX01", "U0CAROL001", "<@U0CAROL001> has joined the channel", "1700000002.000100")
	join["subtype"] = "channel_join"
	r = w.fake.send(w.url, envelope(globex, "Ev0GLOBEX01", join))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	e = stream.Next(1)[0]
	require.Equal(t, subB.GetId(), e.GetSubscriptionId())
	require.Equal(t, connB.GetId(), e.GetConnectionId())
	require.Equal(t, "message.channel_join", e.GetType())
	require.Equal(t, "Ev0GLOBEX01", e.GetExternalId())
	require.Equal(t, "channel_join", record(e)["subtype"])

	// An app_mention and a reaction of Acme.
	mention := map[string]any{
		"type": "app_mention", "user": "U0ALICE001", "text": "<@U0ACMEBOT1> deploy?", "ts": "1700000003.000100",
		"channel": "C0ACMEGEN1", "event_ts": "1700000003.000100",
	}
	reaction := map[string]any{
		"type": "reaction_added", "user": "U0ALICE001", "reaction": "thumbsup", "item_user": "U0BOB00001",
		"item":     map[string]any{"type": "message", "channel": "C0ACMEGEN1", "ts": "1700000001.000100"},
		"event_ts": "1700000004.000100",
	}
	require.Equal(t, http.StatusOK, w.fake.send(w.url, envelope(acme, "Ev0ACME0002", mention)).Status)
	require.Equal(t, http.StatusOK, w.fake.send(w.url, envelope(acme, "Ev0ACME0003", reaction)).Status)
	evs := stream.Next(2)
	require.Equal(t, "app_mention", evs[0].GetType())
	require.Equal(t, "Ev0ACME0002", evs[0].GetExternalId())
	require.Equal(t, "reaction_added", evs[1].GetType())
	require.Equal(t, "thumbsup", record(evs[1])["reaction"])
	for _, e := range evs {
		require.Equal(t, subA.GetId(), e.GetSubscriptionId())
	}
	stream.None(200 * time.Millisecond)
}

func TestSharedChannelEventReachesTheAuthorizedInstallation(t *testing.T) {
	w := start(t)
	subA, subB := w.subscribe(w.connection(tokenAcme), nil), w.subscribe(w.connection(tokenGlobex), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})

	// A message posted by an Initech user in a channel shared with Globex: team_id is
	// Initech's, and Slack names Globex's installation in authorizations.
	env := envelope(initech, "Ev0SHARED01", message("C0SHARED01", "U0DAVE0001", "hi from outside", "1700000005.000100"))
	env["is_ext_shared_channel"] = true
	env["authorizations"] = []any{map[string]any{"enterprise_id": nil, "team_id": globex.ID, "user_id": globex.UserID, "is_bot": true, "is_enterprise_install": false}}
	r := w.fake.send(w.url, env)
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	e := stream.Next(1)[0]
	require.Equal(t, subB.GetId(), e.GetSubscriptionId())
	require.Equal(t, "Ev0SHARED01", e.GetExternalId())
	stream.None(200 * time.Millisecond)

	// Posted in Acme, seen by Globex's installation: each workspace gets it once.
	env = envelope(acme, "Ev0SHARED02", message("C0SHARED01", "U0ALICE001", "hi both", "1700000006.000100"))
	env["authorizations"] = []any{map[string]any{"enterprise_id": nil, "team_id": globex.ID, "user_id": globex.UserID, "is_bot": true, "is_enterprise_install": false}}
	require.Equal(t, http.StatusOK, w.fake.send(w.url, env).Status)
	got := map[string]string{}
	for _, e := range stream.Next(2) {
		got[e.GetSubscriptionId()] = e.GetExternalId()
	}
	require.Equal(t, map[string]string{subA.GetId(): "Ev0SHARED02", subB.GetId(): "Ev0SHARED02"}, got)
	stream.None(200 * time.Millisecond)
}

func TestSlackRetriesAreNotDuplicated(t *testing.T) {
	w := start(t)
	sub := w.subscribe(w.connection(tokenAcme), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})

	body := mustJSON(t, envelope(acme, "Ev0RETRY001", message("C0ACMEGEN1", "U0ALICE001", "once", "1700000010.000100")))
	r := w.fake.post(w.url, delivery{Body: body})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	e := stream.Next(1)[0]
	require.Equal(t, sub.GetId(), e.GetSubscriptionId())

	// Slack did not see the answer in 3 s and retries: same body, new timestamp and signature.
	r = w.fake.post(w.url, delivery{Body: body, Timestamp: time.Now().Add(time.Second), RetryNum: 1})
	require.Equal(t, http.StatusOK, r.Status, "a retry is acknowledged, or Slack keeps retrying: %s", r.Body)
	r = w.fake.post(w.url, delivery{Body: body, Timestamp: time.Now().Add(2 * time.Second), RetryNum: 2})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	stream.None(300 * time.Millisecond)
	require.Len(t, w.storedEvents(), 1)
	require.Len(t, w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE), 2)

	// Another event id is another event.
	r = w.fake.send(w.url, envelope(acme, "Ev0RETRY002", message("C0ACMEGEN1", "U0ALICE001", "twice", "1700000011.000100")))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Equal(t, "Ev0RETRY002", stream.Next(1)[0].GetExternalId())
}

func TestSignatureIsChecked(t *testing.T) {
	w := start(t)
	w.subscribe(w.connection(tokenAcme), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	body := mustJSON(t, envelope(acme, "Ev0FORGED01", message("C0ACMEGEN1", "U0MALLORY1", "forged", "1700000020.000100")))

	for name, d := range map[string]delivery{
		"wrong secret":    {Body: body, Secret: "another-apps-signing-secret"},
		"changed body":    {Body: body, SignedBody: mustJSON(t, envelope(acme, "Ev0FORGED01", message("C0ACMEGEN1", "U0MALLORY1", "other", "1")))},
		"stale":           {Body: body, Timestamp: time.Now().Add(-6 * time.Minute)},
		"from the future": {Body: body, Timestamp: time.Now().Add(6 * time.Minute)},
		"unsigned":        {Body: body, NoSig: true},
	} {
		r := w.fake.post(w.url, d)
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s: %s", name, r.Body)
	}
	stream.None(200 * time.Millisecond)
	require.Empty(t, w.storedEvents())
	require.Len(t, w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED), 5)

	// A request 4 minutes old is inside Slack's 5-minute window; the same event then is stored once.
	r := w.fake.post(w.url, delivery{Body: body, Timestamp: time.Now().Add(-4 * time.Minute)})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Equal(t, "Ev0FORGED01", stream.Next(1)[0].GetExternalId())

	// An unknown Request URL is 404.
	r = w.fake.post(w.url+"x", delivery{Body: body})
	require.Equal(t, http.StatusNotFound, r.Status)
}

func TestUnsubscribedTeamIsAnswered200(t *testing.T) {
	w := start(t)
	w.subscribe(w.connection(tokenAcme), nil)
	r := w.fake.send(w.url, envelope(initech, "Ev0NOBODY01", message("C0INITECH1", "U0PETER001", "anyone?", "1700000030.000100")))
	require.Equal(t, http.StatusOK, r.Status, "Slack must not retry an event nobody subscribed to: %s", r.Body)
	un := w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNMATCHED)
	require.Len(t, un, 1)
	require.Equal(t, []string{initech.ID}, un[0].GetSelectors())
	require.True(t, strings.HasSuffix(w.url, "/"+un[0].GetGlobalWebhookId()))
	require.Empty(t, w.storedEvents())
}

func TestAppRateLimitedIsAcceptedWithoutEvents(t *testing.T) {
	w := start(t)
	w.subscribe(w.connection(tokenAcme), nil)
	r := w.fake.send(w.url, map[string]any{
		"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "type": "app_rate_limited", "team_id": acme.ID,
		"minute_rate_limited": int64(1518467820), "api_app_id": appID,
	})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.JSONEq(t, `{"received": 0}`, r.Body)
	require.Empty(t, w.storedEvents())
	require.Len(t, w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK), 1)

	// A request type the Events API does not send is kept for replay, not dropped.
	r = w.fake.send(w.url, map[string]any{"type": "block_actions", "team": map[string]any{"id": acme.ID}})
	require.Equal(t, http.StatusInternalServerError, r.Status, r.Body)
	require.Contains(t, r.Body, "kept for replay")
	failed := w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED)
	require.Len(t, failed, 1)
	require.Contains(t, failed[0].GetError(), `unsupported Slack Events API request type "block_actions"`)
	require.Empty(t, w.storedEvents())
}

func TestEventTypesAndChannelFilters(t *testing.T) {
	w := start(t)
	conn := w.connection(tokenAcme)
	all := w.subscribe(conn, nil)
	mentions := w.subscribe(conn, map[string]any{"eventTypes": []any{"app_mention", "message.channel_join"}})
	general := w.subscribe(conn, map[string]any{"channel": "C0ACMEGEN1"})
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})

	join := message("C0ACMERND1", "U0CAROL001", "joined", "1700000040.000100")
	join["subtype"] = "channel_join"
	sends := []map[string]any{
		envelope(acme, "Ev0F0000001", message("C0ACMEGEN1", "U0ALICE001", "in general", "1700000041.000100")),
		envelope(acme, "Ev0F0000002", map[string]any{"type": "app_mention", "channel": "C0ACMERND1", "user": "U0ALICE001", "text": "<@U0ACMEBOT1>", "ts": "1700000042.000100"}),
		envelope(acme, "Ev0F0000003", join),
		envelope(acme, "Ev0F0000004", map[string]any{"type": "reaction_added", "user": "U0ALICE001", "reaction": "eyes", "item": map[string]any{"type": "message", "channel": "C0ACMEGEN1", "ts": "1700000041.000100"}, "event_ts": "1700000043.000100"}),
		envelope(acme, "Ev0F0000005", map[string]any{"type": "team_join", "user": map[string]any{"id": "U0NEWBIE01", "name": "newbie"}, "event_ts": "1700000044.000100"}),
	}
	for _, env := range sends {
		require.Equal(t, http.StatusOK, w.fake.send(w.url, env).Status)
	}
	want := map[string][]string{
		all.GetId():      {"Ev0F0000001", "Ev0F0000002", "Ev0F0000003", "Ev0F0000004", "Ev0F0000005"},
		mentions.GetId(): {"Ev0F0000002", "Ev0F0000003"},
		general.GetId():  {"Ev0F0000001", "Ev0F0000004"},
	}
	got := map[string][]string{}
	for _, e := range stream.Next(9) {
		got[e.GetSubscriptionId()] = append(got[e.GetSubscriptionId()], e.GetExternalId())
	}
	require.Equal(t, want, got)
	stream.None(200 * time.Millisecond)
}

func TestDeleteSubscriptionStopsRouting(t *testing.T) {
	w := start(t)
	conn := w.connection(tokenAcme)
	sub := w.subscribe(conn, nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	require.Equal(t, http.StatusOK, w.fake.send(w.url, envelope(acme, "Ev0DEL00001", message("C0ACMEGEN1", "U0ALICE001", "before", "1700000050.000100"))).Status)
	require.Equal(t, sub.GetId(), stream.Next(1)[0].GetSubscriptionId())

	_, err := w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, []string{"POST /api/auth.test Bearer " + tokenAcme}, w.fake.Calls(), "a global webhook has nothing to remove in Slack")

	r := w.fake.send(w.url, envelope(acme, "Ev0DEL00002", message("C0ACMEGEN1", "U0ALICE001", "after", "1700000051.000100")))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	stream.None(200 * time.Millisecond)
	require.Len(t, w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNMATCHED), 1)
	require.Len(t, w.storedEvents(), 1)
}

func TestSigningSecretIsRequired(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate())
	_, err := h.Connectors.SetConnectorParameters(h.Ctx(), &hookmapv1.SetConnectorParametersRequest{
		ConnectorKey: "slack", Parameters: apptest.Struct(t, map[string]any{}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "signingSecret")

	// Before the secret is set, nothing sent to the Request URL is accepted.
	f := newFakeSlack(t, nil)
	r := f.send(h.GlobalWebhookURL("slack", "events"), map[string]any{"type": "url_verification", "challenge": "abc", "token": "x"})
	require.NotEqual(t, http.StatusOK, r.Status, r.Body)
	require.NotContains(t, r.Body, "abc")
}

// The Web API base is https://slack.com/api unless the connection's baseUri replaces it.
func TestAPIBase(t *testing.T) {
	c := apptest.LoadConnector(t, ".") // this connector's folder alone
	sel := c.Events["events"].Methods["getEventsSelector"]
	require.NotNil(t, sel)
	for _, tc := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{}, "https://slack.com/api/auth.test"},
		{map[string]any{"baseUri": "https://slack-proxy.example/api"}, "https://slack-proxy.example/api/auth.test"},
	} {
		rec := &apptest.Recorder{Body: `{"ok": true, "team": "Acme", "team_id": "T0ACME0001"}`}
		out, err := sel.Run(context.Background(), map[string]any{
			"connection":  map[string]any{"id": "c1", "parameters": tc.params},
			"credentials": map[string]any{"botToken": tokenAcme},
			"parameters":  map[string]any{},
		}, engine.RunOptions{HTTP: rec})
		require.NoError(t, err)
		require.Equal(t, map[string]any{"globalWebhookKey": "events", "globalWebhookEventSelector": "T0ACME0001"}, out)
		require.Len(t, rec.Requests, 1)
		req := rec.Requests[0]
		require.Equal(t, http.MethodPost, req.Method)
		require.Equal(t, tc.want, req.URL.String())
		require.Equal(t, "Bearer "+tokenAcme, req.Header.Get("Authorization"))
	}
}
