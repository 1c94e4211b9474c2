// Package recorder keeps the recordings of rooms exactly as long as the
// operator may keep them (DESIGN.md decisions 6 and 7).
//
// A Recorder owns one store directory on one node. Each Recording reads a
// room's full mix (a Source, normally a *room.MixConsumer), encodes it and
// writes it as Ogg/Opus (RFC 7845, the default) or as AAC-LC in fragmented
// MP4 (Options.Format) in pages or fragments of at most one second, each
// written and (by default) fsynced, next to a JSON manifest that is
// replaced atomically. A crash therefore leaves a playable file; New cuts it
// at its last intact page or fragment and marks it interrupted. The two
// formats share everything but a packetEncoder and a container (format.go).
//
// Encryption at rest (Options.EncryptionKey): the file under the container
// is then a sealedFile (sealed.go), AES-256-GCM in 4 KiB chunks at fixed
// offsets whose last, partial chunk is sealed again at every page, so a
// crash still leaves a file readable up to its last page, and Open
// decrypts only the chunks a ranged download needs.
//
// Retention: expires_at is fixed when a recording starts from its Policy;
// Extend can move it later but never past the policy's maximum; a legal
// hold suspends expiry. Expiry is enforced when a file is opened, not only
// by the sweeper (Sweep, Run), which deletes expired recordings and retries
// deletions that failed. Every deletion appends a receipt to a hash-chained,
// HMAC-signed JSON-lines log (Verify checks it); the audio goes, the
// manifest stays with its personal details (participants) removed.
//
// Fencing (DESIGN.md decision 4): with Options.Fence, a recording started
// WithEpoch is made only while the room's lease is held at that epoch; Start
// refuses a stale epoch, and a running recording whose epoch turns stale
// stops writing anything (Recording explains what is left and why).
//
// The package imports media for the codec and room only for the types of
// the mix it reads (room.MixFrame, room.ID): it never reaches into a room.
package recorder
