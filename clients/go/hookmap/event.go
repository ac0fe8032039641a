package hookmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// Connection events: hookmap's own news about a connection, on the workspace's stream
// beside the events of subscriptions. They have EventKey ConnectionEventKey, no
// SubscriptionID, and a record that decodes into a ConnectionEvent.
const (
	ConnectionEventKey = "connection"
	// TypeConnectionConnected: its user completed an authorization (AuthorizeConnection).
	TypeConnectionConnected = "connection.connected"
	// TypeConnectionDisconnected: the app refused its grant for good (a revoked refresh
	// token); its methods fail until it is authorized again or given new credentials.
	TypeConnectionDisconnected = "connection.disconnected"
)

// ConnectionEvent is the record of a connection event.
type ConnectionEvent struct {
	ConnectionID string `json:"connectionId"`
	ConnectorKey string `json:"connectorKey"`
	Name         string `json:"name"`
	Status       string `json:"status"`          // CONNECTED, DISCONNECTED
	Error        string `json:"error,omitempty"` // why it is disconnected: the app's answer
}

// Event is one stored event, as Consume hands it to a handler.
type Event struct {
	Seq          int64 // monotonic per workspace
	ID           string
	ConnectionID string
	// SubscriptionID is empty for a connection event (IsConnectionEvent).
	SubscriptionID string
	EventKey       string
	Type           string
	ExternalID     string // the mapping's id for the event (a provider's delivery id), if any
	DeliveryID     string // the received request it came from
	ReceiveTime    time.Time
	// Record is the record's JSON text as hookmap stored it: every integer exact, object
	// keys sorted.
	Record json.RawMessage
}

// Decode decodes the record into v as encoding/json does, except that a number decoded
// into an interface value becomes a json.Number: integers beyond 2^53 stay exact in
// int64, uint64 and json.Number fields and in maps alike.
func (e *Event) Decode(v any) error {
	rec := e.Record
	if len(rec) == 0 {
		rec = json.RawMessage("null")
	}
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("hookmap: event %d: decode record: %w", e.Seq, err)
	}
	return nil
}

// IsConnectionEvent reports whether e is hookmap's news about a connection (see
// ConnectionEventKey) rather than an event of a subscription.
func (e *Event) IsConnectionEvent() bool {
	return e.SubscriptionID == "" && e.EventKey == ConnectionEventKey
}

// ConnectionEvent decodes the record of a connection event.
func (e *Event) ConnectionEvent() (*ConnectionEvent, error) {
	if !e.IsConnectionEvent() {
		return nil, fmt.Errorf("hookmap: event %d (%s of subscription %s) is not a connection event", e.Seq, e.Type, e.SubscriptionID)
	}
	ce := &ConnectionEvent{}
	if err := e.Decode(ce); err != nil {
		return nil, err
	}
	return ce, nil
}

// orderKey is what Consume keeps the order of: a subscription's events, or a connection's
// events that belong to no subscription.
func (e *Event) orderKey() string {
	if e.SubscriptionID != "" {
		return e.SubscriptionID
	}
	return "connection:" + e.ConnectionID
}

// NewEvent turns a received hookmapv1.Event (from ListEvents or StreamEvents) into an
// Event. The record is exact when the request asked for RECORD_FORMAT_JSON; an event in
// the Value form gets that Value's JSON, whose numbers are doubles.
func NewEvent(pe *hookmapv1.Event) (*Event, error) {
	e := &Event{
		Seq: pe.GetSeq(), ID: pe.GetId(), ConnectionID: pe.GetConnectionId(), SubscriptionID: pe.GetSubscriptionId(),
		EventKey: pe.GetEventKey(), Type: pe.GetType(), ExternalID: pe.GetExternalId(), DeliveryID: pe.GetDeliveryId(),
	}
	if t := pe.GetReceiveTime(); t != nil {
		e.ReceiveTime = t.AsTime()
	}
	switch {
	case pe.GetRecordJson() != "":
		e.Record = json.RawMessage(pe.GetRecordJson())
	case pe.GetRecord() != nil:
		b, err := protojson.Marshal(pe.GetRecord())
		if err != nil {
			return nil, fmt.Errorf("hookmap: event %d: record: %w", e.Seq, err)
		}
		e.Record = b
	default:
		e.Record = json.RawMessage("null")
	}
	return e, nil
}
