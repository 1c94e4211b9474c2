package recorder

import "net/http"

// Error is a recorder error that knows the HTTP status the admin API answers
// it with, so handlers map errors in one place (errors.As with an interface
// holding HTTPStatus finds it through any %w wrapping).
type Error struct {
	msg    string
	status int
}

// Error returns the lower-case message.
func (e *Error) Error() string { return e.msg }

// HTTPStatus is the status code an HTTP handler answers with (RFC 9110 §15).
func (e *Error) HTTPStatus() int { return e.status }

// Errors of package recorder. Compare with errors.Is; the methods that return
// them wrap them with %w and detail (a recording ID, a policy name, never a
// caller number, display name or key).
var (
	// ErrInvalidID means a string is not a recording or receipt ID: 22
	// characters of unpadded base64url holding 128 random bits. IDs are
	// checked before any path is built from them, so "../x" never reaches
	// the file system.
	ErrInvalidID = &Error{"invalid recording id", http.StatusBadRequest}

	// ErrInvalidTenant means a tenant name is empty, too long or has
	// characters other than letters, digits, '.', '_' and '-'.
	ErrInvalidTenant = &Error{"invalid tenant", http.StatusBadRequest}

	// ErrInvalidArgument means another argument was unusable: an empty
	// actor or legal-hold reason, an unknown deletion reason, a zero time.
	ErrInvalidArgument = &Error{"invalid argument", http.StatusBadRequest}

	// ErrUnknownPolicy means Start named a retention policy that Options
	// does not define.
	ErrUnknownPolicy = &Error{"unknown retention policy", http.StatusUnprocessableEntity}

	// ErrNotFound means no recording in this store has the ID.
	ErrNotFound = &Error{"recording not found", http.StatusNotFound}

	// ErrExpired means the recording's expires_at has passed and no legal
	// hold keeps it: it may no longer be read or extended, even if the
	// sweeper has not deleted it yet (decision 7). 410 Gone.
	ErrExpired = &Error{"recording expired", http.StatusGone}

	// ErrDeleted means the recording's audio was deleted (or its deletion
	// is under way); only its manifest and receipt remain. 410 Gone.
	ErrDeleted = &Error{"recording deleted", http.StatusGone}

	// ErrActive means the operation needs a finished recording (download,
	// deletion) and this one is still recording. 409 Conflict.
	ErrActive = &Error{"recording in progress", http.StatusConflict}

	// ErrLegalHold means a deletion was refused because the recording is on
	// legal hold; clear the hold first. 409 Conflict.
	ErrLegalHold = &Error{"recording is on legal hold", http.StatusConflict}

	// ErrRetentionMin means a deletion was asked for before the policy's
	// minimum retention has passed (a legal duty to keep it). 409 Conflict.
	ErrRetentionMin = &Error{"recording is within its minimum retention", http.StatusConflict}

	// ErrRetentionMax means Extend asked for an expiry later than the
	// recording's start plus its policy's maximum retention.
	ErrRetentionMax = &Error{"expiry past the policy's maximum retention", http.StatusUnprocessableEntity}

	// ErrRetentionShorten means Extend asked for an expiry earlier than the
	// current one: expires_at is a promise, only deletion ends it sooner.
	ErrRetentionShorten = &Error{"expiry can only be extended", http.StatusUnprocessableEntity}

	// ErrInterrupted wraps the write error that stopped a recording early
	// (disk full, I/O error); the file keeps every complete page before it.
	ErrInterrupted = &Error{"recording interrupted", http.StatusInternalServerError}

	// ErrClosed means the Recorder is closed and starts no recordings.
	// 503, so the caller can try another node.
	ErrClosed = &Error{"recorder closed", http.StatusServiceUnavailable}

	// ErrOptions means Options hold an unusable setting; the message names
	// the field.
	ErrOptions = &Error{"invalid recorder options", http.StatusInternalServerError}

	// ErrCorruptManifest means a manifest file could not be read back or
	// does not belong to the ID its name gives; New skips it and reports it.
	ErrCorruptManifest = &Error{"corrupt manifest", http.StatusInternalServerError}

	// ErrStale means this node no longer owns the recording's room: the
	// fencing epoch the recording was started with (WithEpoch) is stale, as
	// Options.Fence says. Start refuses to create anything with it, and a
	// running recording that learns it stops writing at once (Recording
	// has the details). 409 Conflict: another node holds the room now.
	ErrStale = &Error{"room ownership lost: stale epoch", http.StatusConflict}

	// ErrFenceUnavailable means Options.Fence could not tell whether this
	// node owns the room (the shared state is unreachable). Start refuses
	// then, since it would create files with an epoch nobody vouched for;
	// running recordings carry on and ask again. 503, to try again.
	ErrFenceUnavailable = &Error{"room ownership cannot be checked now", http.StatusServiceUnavailable}

	// ErrNoAudio means recovery found no intact Ogg/Opus header pages in a
	// recording's file: nothing of it can be played.
	ErrNoAudio = &Error{"no intact ogg/opus headers", http.StatusInternalServerError}

	// ErrDecrypt means an encrypted recording could not be read: a chunk
	// fails GCM authentication (the file was changed, or read with another
	// key), or the file is torn or shorter than its manifest says.
	ErrDecrypt = &Error{"encrypted recording unreadable", http.StatusInternalServerError}

	// ErrEncryptionKey means the store holds encrypted recordings that the
	// configured encryption key (or its absence) cannot read: New refuses
	// to start rather than fail every download later.
	ErrEncryptionKey = &Error{"wrong recording encryption key", http.StatusInternalServerError}
)

// Errors of the deletion receipts log, as Verify reports them (wrapped in a
// *VerifyError that names the line).
var (
	// ErrReceiptMalformed means a line is not a receipt as this package
	// writes it: not JSON, unknown or missing fields, no trailing sig.
	ErrReceiptMalformed = &Error{"malformed deletion receipt", http.StatusInternalServerError}

	// ErrReceiptSignature means a line's HMAC does not match: the line was
	// changed, or signed with another key.
	ErrReceiptSignature = &Error{"bad deletion receipt signature", http.StatusInternalServerError}

	// ErrReceiptChain means a line's prev is not the hash of the line before
	// it: a line was removed, inserted or reordered.
	ErrReceiptChain = &Error{"broken deletion receipt chain", http.StatusInternalServerError}
)
