package api

import (
	"crypto/rand"
	"time"

	"github.com/mediagate/mediagate/recorder"
	"github.com/mediagate/mediagate/room"
)

// WebhookEventType names what a webhook event reports; its value is the
// "type" of the JSON and the Mediagate-Event header.
type WebhookEventType string

// The webhook events (docs/webhooks.md shows each payload).
const (
	// WebhookRoomStarted: a room opened on this node.
	WebhookRoomStarted WebhookEventType = "room.started"
	// WebhookRoomFinished: the room closed (empty for the empty timeout,
	// closed by an administrator, moved away, or the node stopped).
	WebhookRoomFinished WebhookEventType = "room.finished"
	// WebhookParticipantJoined: someone joined the room (Participant).
	WebhookParticipantJoined WebhookEventType = "participant.joined"
	// WebhookParticipantLeft: someone left or was removed (Participant).
	WebhookParticipantLeft WebhookEventType = "participant.left"
	// WebhookCallStarted: a phone call was answered (Call); Room is set
	// when a dispatch rule names the room, empty while the voice menu asks
	// for it.
	WebhookCallStarted WebhookEventType = "call.started"
	// WebhookCallEnded: the phone call ended (Call); Room is the last room
	// it was in, if any.
	WebhookCallEnded WebhookEventType = "call.ended"
	// WebhookRecordingStarted: a recording of the room started (Recording).
	WebhookRecordingStarted WebhookEventType = "recording.started"
	// WebhookRecordingEnded: the recording ended, complete or interrupted
	// (Recording.State).
	WebhookRecordingEnded WebhookEventType = "recording.ended"
	// WebhookRecordingExpiring: the recording will be deleted at
	// Recording.ExpiresAt (one event per configured warning lead time).
	WebhookRecordingExpiring WebhookEventType = "recording.expiring"
	// WebhookRecordingDeleted: the recording's audio was deleted and its
	// deletion receipt written (Receipt).
	WebhookRecordingDeleted WebhookEventType = "recording.deleted"
	// WebhookEgressStarted: the room started streaming live (Egress).
	WebhookEgressStarted WebhookEventType = "egress.started"
	// WebhookEgressUpdated: a destination of the egress changed state
	// (Egress.Destination).
	WebhookEgressUpdated WebhookEventType = "egress.updated"
	// WebhookEgressEnded: the egress stopped.
	WebhookEgressEnded WebhookEventType = "egress.ended"
)

// WebhookEventTypes lists every event type, in documentation order (equal
// to configs.WebhookEvents, which validates webhooks.<name>.events).
var WebhookEventTypes = []WebhookEventType{
	WebhookRoomStarted, WebhookRoomFinished,
	WebhookParticipantJoined, WebhookParticipantLeft,
	WebhookCallStarted, WebhookCallEnded,
	WebhookRecordingStarted, WebhookRecordingEnded, WebhookRecordingExpiring, WebhookRecordingDeleted,
	WebhookEgressStarted, WebhookEgressUpdated, WebhookEgressEnded,
}

// WebhookEvent is one event as its JSON body carries it. Only the part of
// its type is set besides the common fields. It holds no PIN, key or
// stream key, and phone numbers only masked (the last two digits).
type WebhookEvent struct {
	// ID is unique per event ("evt_" and 26 base32 characters); a retry
	// sends the same ID, so receivers drop duplicates by it.
	ID string `json:"id"`
	// Type says what happened.
	Type WebhookEventType `json:"type"`
	// CreatedAt is when it happened (UTC).
	CreatedAt time.Time `json:"created_at"`
	// Node is the node that saw it.
	Node string `json:"node"`
	// Room is the room it happened in; empty for a call not (yet) in a
	// room and for recording events whose room is unknown.
	Room room.ID `json:"room,omitempty"`

	Participant *WebhookParticipant `json:"participant,omitempty"`
	Call        *WebhookCall        `json:"call,omitempty"`
	Recording   *WebhookRecording   `json:"recording,omitempty"`
	Receipt     *WebhookReceipt     `json:"receipt,omitempty"`
	Egress      *WebhookEgress      `json:"egress,omitempty"`
}

// WebhookParticipant is a participant of participant.* events.
type WebhookParticipant struct {
	ID room.ParticipantID `json:"id"`
	// Name is the display name; a phone caller's is its masked number.
	Name string `json:"name,omitempty"`
	// Kind is "webrtc", "phone", "listener" ...
	Kind string `json:"kind,omitempty"`
}

// WebhookCall is a phone call of call.* events.
type WebhookCall struct {
	// ID is the SIP Call-ID, also the call's participant ID in its room.
	ID string `json:"id"`
	// From and To are the caller's and the dialed number, masked but for
	// the last two characters.
	From string `json:"from"`
	To   string `json:"to"`
	// Trunk is the trunk the call came in on; empty without trunks.
	Trunk string `json:"trunk,omitempty"`
	// Transport is UDP, TCP or TLS.
	Transport string `json:"transport,omitempty"`
	// Duration is how long the call lasted, in seconds (call.ended).
	Duration float64 `json:"duration,omitempty"`
}

// WebhookRecording is a recording of recording.* events.
type WebhookRecording struct {
	ID     recorder.ID     `json:"id"`
	Tenant recorder.Tenant `json:"tenant"`
	// State is the manifest's state: recording, complete, interrupted,
	// deleted.
	State recorder.State `json:"state,omitempty"`
	// StartedAt, EndedAt and Duration (seconds) describe the audio.
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Duration  float64   `json:"duration,omitempty"`
	// ExpiresAt is when retention deletes it.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Lead is the warning's lead time before ExpiresAt, in seconds
	// (recording.expiring).
	Lead float64 `json:"lead,omitempty"`
	// Error says why it was interrupted.
	Error string `json:"error,omitempty"`
}

// WebhookReceipt is the deletion receipt of recording.deleted: the fields
// of the signed line in the receipts log (the line itself, with its hash
// chain and signature, is served by /api/v1/receipts).
type WebhookReceipt struct {
	ID        recorder.ReceiptID      `json:"receipt_id"`
	Recording recorder.ID             `json:"recording_id"`
	Tenant    recorder.Tenant         `json:"tenant"`
	Room      room.ID                 `json:"room"`
	SHA256    string                  `json:"sha256"`
	Bytes     int64                   `json:"bytes"`
	ExpiresAt time.Time               `json:"expires_at"`
	DeletedAt time.Time               `json:"deleted_at"`
	Reason    recorder.DeletionReason `json:"reason"`
	Node      string                  `json:"node"`
}

// WebhookEgress is a room's live stream of egress.* events.
type WebhookEgress struct {
	// Destination is the destination whose state changed
	// (egress.updated); the started event lists them all.
	Destination  *WebhookDestination  `json:"destination,omitempty"`
	Destinations []WebhookDestination `json:"destinations,omitempty"`
}

// WebhookDestination is one destination of an egress.
type WebhookDestination struct {
	ID string `json:"id"`
	// Name is the operator's label.
	Name string `json:"name,omitempty"`
	// URL is masked: no stream key.
	URL string `json:"url"`
	// State is connecting, live, backoff, rejected, error, stopped or
	// fenced.
	State string `json:"state"`
	// Error is why it left live or connecting, stream key masked.
	Error string `json:"error,omitempty"`
}

// newEventID returns a fresh event ID.
func newEventID() string { return "evt_" + rand.Text() }
