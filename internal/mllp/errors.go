package mllp

import (
	"errors"
	"fmt"
)

// ErrFrameTooLarge reports a frame whose payload exceeds the maximum
// message size. It is wrapped in a [*FrameError].
var ErrFrameTooLarge = errors.New("mllp: frame exceeds maximum size")

// ErrIncompleteFrame reports a stream that ended, or failed, after a start
// block but before the end of the frame. It is wrapped in a [*FrameError]
// whose Cause is the I/O error: [io.ErrUnexpectedEOF] when the peer closed
// the stream, a timeout or network error otherwise.
var ErrIncompleteFrame = errors.New("mllp: stream ended inside a frame")

// ErrTooMuchJunk reports that more than the maximum message size worth of
// bytes were discarded in a single read without a complete frame. It bounds
// the work done for a peer that streams bytes which are not MLLP. It is
// wrapped in a [*FrameError]; reading again resumes skipping.
var ErrTooMuchJunk = errors.New("mllp: too many bytes outside a frame")

// ErrJunk reports bytes discarded outside of a frame. The [Reader] never
// returns it (it reports junk through [Reader.Discarded]); the [Server]
// passes it to OnFrameError so that the owner can audit the bytes.
var ErrJunk = errors.New("mllp: bytes outside a frame discarded")

// ErrInvalidPayload reports a payload that cannot be framed without
// corrupting the stream: it contains a start block (VT) or the end sequence
// FS CR.
var ErrInvalidPayload = errors.New("mllp: payload contains a frame delimiter")

// ErrServerClosed is returned by [Server.Serve] and [Server.ListenAndServe]
// after [Server.Shutdown] or [Server.Close].
var ErrServerClosed = errors.New("mllp: server closed")

// FrameError describes a frame, or a run of junk bytes, that could not be
// delivered as a message. Err is one of [ErrFrameTooLarge],
// [ErrIncompleteFrame], [ErrTooMuchJunk] or [ErrJunk]; errors.Is matches it
// as well as Cause.
type FrameError struct {
	// Err is the sentinel describing what went wrong.
	Err error
	// Cause is the underlying I/O error, if any (for ErrIncompleteFrame).
	Cause error
	// Partial holds the bytes concerned so that the caller can keep them
	// for audit: the payload received after the start block, or the
	// discarded junk. It is capped at the maximum message size and owned
	// by the caller.
	Partial []byte
	// Size is the number of bytes concerned. It exceeds len(Partial) only
	// for junk, whose capture is capped.
	Size int64
}

// Error implements error. It reports sizes only, never content, because
// payloads carry patient data and errors end up in logs.
func (e *FrameError) Error() string {
	s := fmt.Sprintf("%v (%d bytes)", e.Err, e.Size)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns Err and Cause so that errors.Is matches either.
func (e *FrameError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}
