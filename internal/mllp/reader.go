package mllp

import (
	"bufio"
	"bytes"
	"io"
)

// Frame delimiters defined by MLLP.
const (
	// StartBlock (VT) opens a frame.
	StartBlock byte = 0x0B
	// EndBlock (FS) closes a frame's payload.
	EndBlock byte = 0x1C
	// CarriageReturn (CR) follows EndBlock to end a frame.
	CarriageReturn byte = 0x0D
)

// DefaultMaxMessageSize is the payload size limit used when none is given:
// large enough for HL7 messages carrying embedded documents, small enough
// that a broken or hostile peer cannot exhaust memory.
const DefaultMaxMessageSize = 16 << 20

// readBufferSize sizes the bufio.Reader. Most HL7 messages fit in it, so
// that a frame is usually found with a single scan and copied once.
const readBufferSize = 32 << 10

// Reader reads MLLP frames from a byte stream. See the package
// documentation for how it treats junk, restarts and missing delimiters.
//
// Every byte read is accounted for exactly once: in a returned payload, in
// the framing of a returned payload, in a [FrameError]'s Partial, or as
// discarded junk. The outcome does not depend on how the stream is split
// into reads.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	br  *bufio.Reader
	max int

	// junk and junkN describe the bytes discarded by the last ReadFrame.
	junk  []byte
	junkN int64

	// onStart, when set, is called when a frame's start block is consumed.
	// The server uses it to tell a connection receiving a message from an
	// idle one.
	onStart func()
}

// NewReader returns a Reader reading from r that rejects payloads larger
// than maxSize bytes; maxSize <= 0 means [DefaultMaxMessageSize]. If r is a
// [*bufio.Reader] with a buffer of at least 32 KiB, it is used directly.
func NewReader(r io.Reader, maxSize int) *Reader {
	return newReaderSize(r, maxSize, readBufferSize)
}

// newReaderSize lets tests use a tiny buffer to exercise the paths where a
// frame spans several buffer fills.
func newReaderSize(r io.Reader, maxSize, bufSize int) *Reader {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	return &Reader{br: bufio.NewReaderSize(r, bufSize), max: maxSize}
}

// MaxSize returns the largest payload the Reader accepts.
func (r *Reader) MaxSize() int { return r.max }

// Discarded reports the junk skipped by the last call to ReadFrame: n is
// the number of bytes and junk holds the first of them, capped at the
// maximum message size. The slice is owned by the caller. Junk includes
// bytes before a start block, frames abandoned because a new start block
// arrived, and the rest of an oversized frame skipped while resyncing.
func (r *Reader) Discarded() (n int64, junk []byte) { return r.junkN, r.junk }

// ReadFrame returns the payload of the next frame, without delimiters. The
// slice is newly allocated and owned by the caller; an empty frame yields
// an empty, non-nil slice.
//
// At a frame boundary, the end of the stream yields [io.EOF] and any other
// I/O error is returned as is. Otherwise the error is a [*FrameError]:
//
//   - [ErrFrameTooLarge] as soon as the payload exceeds the maximum size;
//     Partial holds the first maximum-size bytes. The following calls skip
//     the rest of the frame, up to the next start block, as junk (and, if
//     that rest is larger than the maximum size, return ErrTooMuchJunk
//     along the way).
//   - [ErrIncompleteFrame] if the stream ends or fails inside a frame;
//     Partial holds the bytes received after the start block.
//   - [ErrTooMuchJunk] once more than the maximum size has been discarded
//     in this call; Partial holds the junk. The next call keeps skipping.
//
// After any of these, ReadFrame may be called again to continue with the
// rest of the stream.
func (r *Reader) ReadFrame() ([]byte, error) {
	r.junk, r.junkN = nil, 0
	if err := r.seekStart(); err != nil {
		return nil, err
	}
	if r.onStart != nil {
		r.onStart()
	}
	return r.readPayload()
}

// seekStart consumes bytes up to and including the next start block,
// recording the bytes before it as junk.
func (r *Reader) seekStart() error {
	for {
		b, err := r.peek()
		if err != nil {
			return err
		}
		i := bytes.IndexByte(b, StartBlock)
		n := i
		if i < 0 {
			n = len(b)
		}
		if r.junkN+int64(n) > int64(r.max) {
			// Consume exactly up to the first byte over the limit so that
			// the outcome does not depend on read boundaries.
			take := int(int64(r.max) + 1 - r.junkN)
			r.discard(b[:take])
			r.skip(take)
			return r.tooMuchJunk()
		}
		r.discard(b[:n])
		if i >= 0 {
			r.skip(i + 1)
			return nil
		}
		r.skip(n)
	}
}

// readPayload consumes a frame's payload and end block; the start block has
// been consumed. It processes events in stream order: whichever comes
// first of the size limit, a start block or an end block decides.
//
// Each buffered byte is scanned a bounded number of times, whatever the
// input: a peer must not be able to make the server rescan its buffer for
// every delimiter it sends.
func (r *Reader) readPayload() ([]byte, error) {
	// frame starts nil so that a payload found in a single scan (the
	// common case) costs exactly one allocation of the right size.
	var frame []byte
	for {
		b, err := r.peek()
		if err != nil {
			return nil, r.incomplete(frame, err)
		}
		for len(b) > 0 {
			end := bytes.IndexByte(b, EndBlock)
			if end < 0 {
				if frame, err = r.payloadRun(frame, b); err != nil {
					return nil, err
				}
				break // b consumed: read more
			}
			if frame, err = r.payloadRun(frame, b[:end]); err != nil {
				return nil, err
			}
			b = b[end:]
			if len(b) == 1 {
				// The byte after the end block is not buffered yet.
				done, err := r.endBlock(&frame)
				if err != nil {
					return nil, err
				}
				if done {
					return finish(frame), nil
				}
				break // b is stale after endBlock's read
			}
			switch b[1] {
			case CarriageReturn:
				r.skip(2)
				return finish(frame), nil
			case StartBlock:
				// The CR is missing; the next frame has begun. Leave its
				// start block for the next call.
				r.skip(1)
				return finish(frame), nil
			}
			// An end block followed by anything else is payload.
			if len(frame)+1 > r.max {
				return nil, tooLarge(frame)
			}
			frame = append(frame, EndBlock)
			r.skip(1)
			b = b[1:]
		}
	}
}

// payloadRun appends run, buffered bytes free of end blocks, to frame and
// consumes it, handling the start blocks in it and the size limit.
func (r *Reader) payloadRun(frame, run []byte) ([]byte, error) {
	for {
		restart := bytes.IndexByte(run, StartBlock)
		if restart >= 0 {
			// Restarts that keep the junk within its budget cannot cross
			// the size limit either (each abandoned frame is shorter than
			// the budget), so they are all handled in one step, up to the
			// last of them: a stream of start blocks then costs about as
			// much as payload.
			budget := int64(r.max) - r.junkN - 1 - int64(len(frame))
			if int64(restart) <= budget {
				window := run[:min(int64(len(run)), budget+1)]
				last := bytes.LastIndexByte(window, StartBlock)
				r.discard([]byte{StartBlock})
				r.discard(frame)
				r.discard(run[:last])
				r.skip(last + 1)
				frame = frame[:0]
				run = run[last+1:]
				continue
			}
		}
		n := len(run)
		if restart >= 0 {
			n = restart
		}
		if len(frame)+n > r.max {
			take := r.max - len(frame)
			frame = append(frame, run[:take]...)
			r.skip(take)
			return nil, tooLarge(frame)
		}
		frame = append(frame, run[:n]...)
		r.skip(n)
		if restart < 0 {
			return frame, nil
		}
		// A start block beyond the junk budget: the frame so far, with its
		// own start block, is junk, and exceeds the budget. Leave the start
		// block unread so that the next call begins the new frame with it.
		r.discard([]byte{StartBlock})
		r.discard(frame)
		return nil, r.tooMuchJunk()
	}
}

// endBlock decides what the buffered end block at the read position means
// by looking at the byte after it. It returns done when the frame is
// complete, or appends the end block to frame as payload data.
func (r *Reader) endBlock(frame *[]byte) (done bool, err error) {
	nb, err := r.br.Peek(2)
	switch {
	case len(nb) == 2 && nb[1] == CarriageReturn:
		r.skip(2)
		return true, nil
	case len(nb) == 2 && nb[1] == StartBlock:
		// The CR is missing; the next frame has begun. Leave its start
		// block for the next call.
		r.skip(1)
		return true, nil
	case len(nb) == 2:
		if len(*frame)+1 > r.max {
			return false, tooLarge(*frame)
		}
		*frame = append(*frame, EndBlock)
		r.skip(1)
		return false, nil
	case err == io.EOF:
		// The stream ended right after FS: accept the frame rather than
		// lose a complete message for want of its last delimiter.
		r.skip(1)
		return true, nil
	default:
		r.skip(1)
		return false, r.incomplete(append(*frame, EndBlock), err)
	}
}

// peek returns the buffered bytes, reading more first if there are none.
// The slice is valid until the next read from r.br.
func (r *Reader) peek() ([]byte, error) {
	if r.br.Buffered() == 0 {
		if _, err := r.br.Peek(1); err != nil {
			return nil, err
		}
	}
	b, _ := r.br.Peek(r.br.Buffered())
	return b, nil
}

// skip consumes n bytes that are known to be buffered.
func (r *Reader) skip(n int) {
	// Discard cannot fail for buffered bytes.
	_, _ = r.br.Discard(n)
}

// discard records p as junk.
func (r *Reader) discard(p []byte) {
	r.junkN += int64(len(p))
	if room := r.max - len(r.junk); room > 0 {
		r.junk = append(r.junk, p[:min(room, len(p))]...)
	}
}

// finish returns a complete payload, which is never nil.
func finish(frame []byte) []byte {
	if frame == nil {
		return []byte{}
	}
	return frame
}

func tooLarge(partial []byte) error {
	return &FrameError{Err: ErrFrameTooLarge, Partial: partial, Size: int64(len(partial))}
}

func (r *Reader) tooMuchJunk() error {
	return &FrameError{Err: ErrTooMuchJunk, Partial: r.junk, Size: r.junkN}
}

func (r *Reader) incomplete(frame []byte, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &FrameError{Err: ErrIncompleteFrame, Cause: err, Partial: frame, Size: int64(len(frame))}
}
