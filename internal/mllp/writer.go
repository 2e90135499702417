package mllp

import (
	"bytes"
	"fmt"
	"io"
)

// WriteFrame writes payload to w as one MLLP frame, in a single Write call
// so that the frame is not interleaved with other writers on w and is not
// split into several small TCP segments.
//
// It returns an error wrapping [ErrInvalidPayload], without writing, if the
// payload contains a start block or the end sequence FS CR: the peer would
// read a different message, or several.
func WriteFrame(w io.Writer, payload []byte) error {
	if err := ValidatePayload(payload); err != nil {
		return err
	}
	buf := make([]byte, 0, len(payload)+3)
	buf = append(buf, StartBlock)
	buf = append(buf, payload...)
	buf = append(buf, EndBlock, CarriageReturn)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// ValidatePayload reports, as an error wrapping [ErrInvalidPayload],
// whether payload cannot be framed intact. Valid payloads are exactly those
// that [WriteFrame] writes and [Reader] reads back unchanged.
func ValidatePayload(payload []byte) error {
	if i := bytes.IndexByte(payload, StartBlock); i >= 0 {
		return fmt.Errorf("%w: start block at offset %d", ErrInvalidPayload, i)
	}
	if i := bytes.Index(payload, []byte{EndBlock, CarriageReturn}); i >= 0 {
		return fmt.Errorf("%w: end sequence at offset %d", ErrInvalidPayload, i)
	}
	return nil
}
