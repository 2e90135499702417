package mllp

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// refRead is a reference model of Reader: a byte-at-a-time transcription
// of the rules in the package documentation, slow and obvious, against
// which the buffered implementation is checked.
func refRead(in []byte, maxSize int) []event {
	var evs []event
	pos := 0
	for {
		ev := refReadFrame(in, &pos, maxSize)
		evs = append(evs, ev)
		if ev.Err == io.EOF {
			return evs
		}
	}
}

func refReadFrame(in []byte, pos *int, maxSize int) event {
	var ev event
	junk := func(b ...byte) {
		for _, c := range b {
			ev.JunkN++
			if len(ev.Junk) < maxSize {
				ev.Junk = append(ev.Junk, c)
			}
		}
	}
	tooMuchJunk := func() event {
		ev.Err, ev.Partial, ev.Size = ErrTooMuchJunk, ev.Junk, ev.JunkN
		return ev
	}

	// Skip to the start block; each junk byte counts against the budget.
	for {
		if *pos == len(in) {
			ev.Err = io.EOF
			return ev
		}
		c := in[*pos]
		*pos++
		if c == StartBlock {
			break
		}
		junk(c)
		if ev.JunkN > int64(maxSize) {
			return tooMuchJunk()
		}
	}

	frame := []byte{}
	for {
		if *pos == len(in) {
			ev.Err, ev.Partial, ev.Size = ErrIncompleteFrame, frame, int64(len(frame))
			return ev
		}
		c := in[*pos]
		switch c {
		case StartBlock:
			junk(StartBlock)
			junk(frame...)
			if ev.JunkN > int64(maxSize) {
				return tooMuchJunk() // the start block stays unread
			}
			*pos++
			frame = []byte{}
			continue
		case EndBlock:
			if *pos+1 == len(in) {
				*pos++
				ev.Frame = frame
				return ev
			}
			switch in[*pos+1] {
			case CarriageReturn:
				*pos += 2
				ev.Frame = frame
				return ev
			case StartBlock:
				*pos++
				ev.Frame = frame
				return ev
			}
		}
		if len(frame)+1 > maxSize {
			ev.Err, ev.Partial, ev.Size = ErrFrameTooLarge, frame, int64(len(frame))
			return ev
		}
		frame = append(frame, c)
		*pos++
	}
}

// FuzzReader checks the Reader against the reference model for every way
// of splitting the input, and checks invariants of what it returns.
func FuzzReader(f *testing.F) {
	seeds := []struct {
		in      string
		maxSize uint8
	}{
		{"\vMSH|^~\\&|A\rPID|1\x1c\r", 255},
		{"junk\vA\x1c\r\vB\x1c\r", 255},
		{"\vA\x1c", 255},
		{"\vA\x1c\vB\x1c\r", 255},
		{"\vA\x1cB\x1c\x1c\r", 255},
		{"\vPART\vFULL\x1c\r", 255},
		{"\v12345\x1c\r\vok\x1c\r", 3},
		{"abcdefgh\vA\x1c\r", 3},
		{"\v1234\vA\x1c\r", 3},
		{"\v1234\x1cX\x1c\r", 3},
		{"\vMSH|partial", 255},
		{"\v\x1c\r\v\x1c\v\x1c", 0},
	}
	for _, s := range seeds {
		f.Add([]byte(s.in), s.maxSize)
	}
	f.Fuzz(func(t *testing.T, in []byte, m uint8) {
		maxSize := int(m) + 1
		want := refRead(in, maxSize)

		// A 4 KiB buffer holds most fuzz inputs whole, like the real 32 KiB
		// one holds most messages, at a fraction of the cost per run.
		for _, ch := range chunkings {
			for _, bs := range []int{16, 4096} {
				got := collect(t, newReaderSize(ch.wrap(bytes.NewReader(in)), maxSize, bs))
				if eventsEqual(want, got) {
					continue // cmp.Diff is slow; only use it to explain a mismatch
				}
				if diff := cmp.Diff(want, got, eventOpts); diff != "" {
					t.Fatalf("%s, buffer %d: mismatch with reference (-want +got):\n%s", ch.name, bs, diff)
				}
			}
		}

		// Invariants of the outcome, independent of the model.
		var frames [][]byte
		var total int64
		for _, ev := range want {
			if len(ev.Frame) > maxSize || len(ev.Partial) > maxSize || len(ev.Junk) > maxSize {
				t.Fatalf("slice over the maximum size %d: %+v", maxSize, ev)
			}
			if ev.Err == nil {
				if err := ValidatePayload(ev.Frame); err != nil {
					t.Fatalf("frame %q cannot be framed again: %v", ev.Frame, err)
				}
				frames = append(frames, ev.Frame)
				total += int64(len(ev.Frame)) + 2 // at least VT and FS
			}
			if ev.Err == ErrFrameTooLarge || ev.Err == ErrIncompleteFrame {
				total += 1 + int64(len(ev.Partial)) // VT and payload
			}
			total += ev.JunkN
		}
		// Every byte is accounted for once; only the CR ending a frame is
		// optional.
		if slack := int64(len(in)) - total; slack < 0 || slack > int64(len(frames)) {
			t.Fatalf("accounted for %d bytes out of %d with %d frames", total, len(in), len(frames))
		}

		// Frames written back read identically, with no junk.
		var buf bytes.Buffer
		for _, fr := range frames {
			if err := WriteFrame(&buf, fr); err != nil {
				t.Fatalf("WriteFrame(%q): %v", fr, err)
			}
		}
		r := newReaderSize(bytes.NewReader(buf.Bytes()), maxSize, 16)
		for i, fr := range frames {
			got, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("re-read frame %d: %v", i, err)
			}
			if n, _ := r.Discarded(); n != 0 || !bytes.Equal(got, fr) {
				t.Fatalf("re-read frame %d = %q with %d junk bytes, want %q", i, got, n, fr)
			}
		}
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("after re-read frames: %v, want io.EOF", err)
		}
	})
}

// eventsEqual is a fast equivalent of cmp.Equal(a, b, eventOpts).
func eventsEqual(a, b []event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Err != y.Err || x.Size != y.Size || x.JunkN != y.JunkN ||
			!bytes.Equal(x.Frame, y.Frame) || !bytes.Equal(x.Partial, y.Partial) || !bytes.Equal(x.Junk, y.Junk) {
			return false
		}
	}
	return true
}
