package mllp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// countingWriter records each Write call separately.
type countingWriter struct {
	writes [][]byte
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestWriteFrame(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{"message", "MSH|^~\\&|A\rPID|1\r", "\vMSH|^~\\&|A\rPID|1\r\x1c\r"},
		{"empty", "", "\v\x1c\r"},
		{"non-ASCII", "Zoë€\xff\x00", "\vZoë€\xff\x00\x1c\r"},
		{"FS not followed by CR", "A\x1cB", "\vA\x1cB\x1c\r"},
		{"trailing FS", "A\x1c", "\vA\x1c\x1c\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w countingWriter
			require.NoError(t, WriteFrame(&w, []byte(tt.payload)))
			require.Len(t, w.writes, 1, "a frame must go out in one Write")
			require.Equal(t, tt.want, string(w.writes[0]))

			got, err := NewReader(bytes.NewReader(w.writes[0]), 0).ReadFrame()
			require.NoError(t, err)
			require.Equal(t, tt.payload, string(got))
		})
	}
}

func TestWriteFrameInvalidPayload(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"start block", "MSH\v|"},
		{"leading start block", "\vMSH"},
		{"end sequence", "MSH\x1c\rPID"},
		{"trailing end sequence", "MSH\x1c\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w countingWriter
			err := WriteFrame(&w, []byte(tt.payload))
			require.ErrorIs(t, err, ErrInvalidPayload)
			require.Empty(t, w.writes, "nothing may be written")
			require.ErrorIs(t, ValidatePayload([]byte(tt.payload)), ErrInvalidPayload)
		})
	}
}

func TestWriteFrameWriteError(t *testing.T) {
	boom := errors.New("boom")
	err := WriteFrame(&countingWriter{err: boom}, []byte("A"))
	require.ErrorIs(t, err, boom)
	require.Contains(t, err.Error(), "write frame")
}
