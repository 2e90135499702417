package mllp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

// event is the observable outcome of one ReadFrame call.
type event struct {
	Frame []byte
	// Err is io.EOF, a FrameError's sentinel, or nil.
	Err     error
	Partial []byte
	Size    int64
	JunkN   int64
	Junk    []byte
}

// eventOpts compares events: errors by identity of their sentinel, nil and
// empty slices as equal (non-nil empty frames are checked by collect).
var eventOpts = cmp.Options{cmpopts.EquateErrors(), cmpopts.EquateEmpty()}

// collect reads r until io.EOF and records every call. Errors other than
// io.EOF and *FrameError fail the test.
func collect(tb testing.TB, r *Reader) []event {
	tb.Helper()
	var evs []event
	for range 1 << 20 {
		frame, err := r.ReadFrame()
		ev := event{Frame: frame}
		ev.JunkN, ev.Junk = r.Discarded()
		var fe *FrameError
		switch {
		case err == nil:
			if frame == nil {
				tb.Fatalf("ReadFrame returned a nil frame without error")
			}
		case err == io.EOF:
			ev.Err = io.EOF
		case errors.As(err, &fe):
			if frame != nil {
				tb.Fatalf("ReadFrame returned a frame with error %v", err)
			}
			ev.Err, ev.Partial, ev.Size = fe.Err, fe.Partial, fe.Size
		default:
			tb.Fatalf("ReadFrame: unexpected error %v", err)
		}
		evs = append(evs, ev)
		if err == io.EOF {
			return evs
		}
	}
	tb.Fatalf("ReadFrame made no progress")
	return nil
}

func frameEv(payload string) event { return event{Frame: []byte(payload)} }

func eofEv() event { return event{Err: io.EOF} }

// chunkings feeds the same input split in different ways: the outcome must
// not depend on read boundaries or on the buffer size.
var chunkings = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one_byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data_err", iotest.DataErrReader},
}

var bufSizes = []int{16, readBufferSize}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []event
	}{
		{
			name: "single frame",
			in:   "\vMSH|^~\\&|A\x1c\r",
			want: []event{frameEv("MSH|^~\\&|A"), eofEv()},
		},
		{
			name: "empty stream",
			in:   "",
			want: []event{eofEv()},
		},
		{
			name: "empty frame",
			in:   "\v\x1c\r",
			want: []event{frameEv(""), eofEv()},
		},
		{
			name: "several frames in one read",
			in:   "\vA\x1c\r\vBB\x1c\r\vCCC\x1c\r",
			want: []event{frameEv("A"), frameEv("BB"), frameEv("CCC"), eofEv()},
		},
		{
			name: "junk before start block",
			in:   "xx\r\n\vA\x1c\r",
			want: []event{{Frame: []byte("A"), JunkN: 4, Junk: []byte("xx\r\n")}, eofEv()},
		},
		{
			name: "line feed between frames",
			in:   "\vA\x1c\r\n\vB\x1c\r",
			want: []event{frameEv("A"), {Frame: []byte("B"), JunkN: 1, Junk: []byte("\n")}, eofEv()},
		},
		{
			name: "junk at end of stream",
			in:   "\vA\x1c\rtrailing",
			want: []event{frameEv("A"), {Err: io.EOF, JunkN: 8, Junk: []byte("trailing")}},
		},
		{
			name: "payload with CR and non-ASCII bytes",
			in:   "\vMSH|^~\\&|Zoë\rPID|1||Müller^€\x00\xff\xfe\r\x1c\r",
			want: []event{frameEv("MSH|^~\\&|Zoë\rPID|1||Müller^€\x00\xff\xfe\r"), eofEv()},
		},
		{
			name: "missing CR at end of stream",
			in:   "\vA\x1c",
			want: []event{frameEv("A"), eofEv()},
		},
		{
			name: "empty frame missing CR at end of stream",
			in:   "\v\x1c",
			want: []event{frameEv(""), eofEv()},
		},
		{
			name: "missing CR before next frame",
			in:   "\vA\x1c\vB\x1c\r",
			want: []event{frameEv("A"), frameEv("B"), eofEv()},
		},
		{
			name: "FS followed by data is payload",
			in:   "\vA\x1cB\x1c\r",
			want: []event{frameEv("A\x1cB"), eofEv()},
		},
		{
			name: "FS before the end sequence is payload",
			in:   "\vA\x1c\x1c\r",
			want: []event{frameEv("A\x1c"), eofEv()},
		},
		{
			name: "end of stream inside a frame",
			in:   "\vMSH|partial",
			want: []event{{Err: ErrIncompleteFrame, Partial: []byte("MSH|partial"), Size: 11}, eofEv()},
		},
		{
			name: "end of stream right after start block",
			in:   "\vA\x1c\r\v",
			want: []event{frameEv("A"), {Err: ErrIncompleteFrame}, eofEv()},
		},
		{
			name: "start block inside a frame restarts it",
			in:   "\vPART\vFULL\x1c\r",
			want: []event{{Frame: []byte("FULL"), JunkN: 5, Junk: []byte("\vPART")}, eofEv()},
		},
		{
			name: "restarts and junk accumulate",
			in:   "j\v\vP\vF\x1c\r",
			want: []event{{Frame: []byte("F"), JunkN: 4, Junk: []byte("j\v\vP")}, eofEv()},
		},
		{
			name: "frame of exactly the maximum size",
			in:   "\v1234\x1c\r",
			max:  4,
			want: []event{frameEv("1234"), eofEv()},
		},
		{
			name: "oversize frame then resync",
			in:   "\v12345\x1c\r\vok\x1c\r",
			max:  4,
			want: []event{
				{Err: ErrFrameTooLarge, Partial: []byte("1234"), Size: 4},
				{Frame: []byte("ok"), JunkN: 3, Junk: []byte("5\x1c\r")},
				eofEv(),
			},
		},
		{
			name: "FS as data crossing the maximum size",
			in:   "\v1234\x1cX\x1c\r",
			max:  4,
			want: []event{
				{Err: ErrFrameTooLarge, Partial: []byte("1234"), Size: 4},
				{Err: io.EOF, JunkN: 4, Junk: []byte("\x1cX\x1c\r")},
			},
		},
		{
			name: "too much junk",
			in:   "abcdefgh\vA\x1c\r",
			max:  4,
			want: []event{
				{Err: ErrTooMuchJunk, Partial: []byte("abcd"), Size: 5, JunkN: 5, Junk: []byte("abcd")},
				{Frame: []byte("A"), JunkN: 3, Junk: []byte("fgh")},
				eofEv(),
			},
		},
		{
			name: "restart over the junk budget keeps the new frame",
			in:   "\v1234\vA\x1c\r",
			max:  4,
			want: []event{
				{Err: ErrTooMuchJunk, Partial: []byte("\v123"), Size: 5, JunkN: 5, Junk: []byte("\v123")},
				frameEv("A"),
				eofEv(),
			},
		},
	}
	for _, tt := range tests {
		for _, ch := range chunkings {
			for _, bs := range bufSizes {
				t.Run(fmt.Sprintf("%s/%s/buf%d", tt.name, ch.name, bs), func(t *testing.T) {
					r := newReaderSize(ch.wrap(bytes.NewReader([]byte(tt.in))), tt.max, bs)
					got := collect(t, r)
					if diff := cmp.Diff(tt.want, got, eventOpts); diff != "" {
						t.Errorf("events mismatch (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

func TestReadFrameEmptyFrameIsNotNil(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte("\v\x1c\r")), 0)
	frame, err := r.ReadFrame()
	require.NoError(t, err)
	require.NotNil(t, frame)
	require.Empty(t, frame)
}

func TestReadFrameOwnership(t *testing.T) {
	// Frames must stay intact after later reads reuse the bufio buffer.
	r := newReaderSize(bytes.NewReader([]byte("\vAAAA\x1c\r\vBBBB\x1c\r\vCCCC\x1c\r")), 0, 16)
	var frames [][]byte
	for {
		f, err := r.ReadFrame()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		frames = append(frames, f)
	}
	require.Equal(t, [][]byte{[]byte("AAAA"), []byte("BBBB"), []byte("CCCC")}, frames)
}

func TestReadFrameIncompleteErrors(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte("\vMSH|x")), 0)
	_, err := r.ReadFrame()
	require.ErrorIs(t, err, ErrIncompleteFrame)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	var fe *FrameError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, []byte("MSH|x"), fe.Partial)
	require.NotContains(t, err.Error(), "MSH", "errors must not carry payload")

	_, err = r.ReadFrame()
	require.Equal(t, io.EOF, err)
}

func TestReadFrameIOErrorInsideFrame(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(bytes.NewReader([]byte("\vABC")), iotest.ErrReader(boom)), 0)
	_, err := r.ReadFrame()
	require.ErrorIs(t, err, ErrIncompleteFrame)
	require.ErrorIs(t, err, boom)
	var fe *FrameError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, []byte("ABC"), fe.Partial)

	// Right after FS, the bytes received include the FS.
	r = NewReader(io.MultiReader(bytes.NewReader([]byte("\vABC\x1c")), iotest.ErrReader(boom)), 0)
	_, err = r.ReadFrame()
	require.ErrorIs(t, err, boom)
	require.ErrorAs(t, err, &fe)
	require.Equal(t, []byte("ABC\x1c"), fe.Partial)
}

func TestReadFrameIOErrorBetweenFrames(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(bytes.NewReader([]byte("\vA\x1c\r")), iotest.ErrReader(boom)), 0)
	f, err := r.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, []byte("A"), f)
	_, err = r.ReadFrame()
	require.Equal(t, boom, err, "errors at a frame boundary are returned as is")
}

// frameGenerator produces a start block, size payload bytes, the end
// sequence and then tail, without holding the payload in memory.
type frameGenerator struct {
	size int64
	tail []byte
	pos  int64 // bytes produced so far
}

func (g *frameGenerator) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case g.pos == 0:
			p[n] = StartBlock
		case g.pos <= g.size:
			k := int(min(int64(len(p)-n), g.size-g.pos+1))
			fill := p[n : n+k]
			fill[0] = 'A'
			for i := 1; i < k; i *= 2 { // doubling copy: fast even under -race
				copy(fill[i:], fill[:i])
			}
			n += k
			g.pos += int64(k)
			continue
		case g.pos == g.size+1:
			p[n] = EndBlock
		case g.pos == g.size+2:
			p[n] = CarriageReturn
		case g.pos-g.size-3 < int64(len(g.tail)):
			p[n] = g.tail[g.pos-g.size-3]
		default:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
		n++
		g.pos++
	}
	return n, nil
}

func TestReadFrameOversizeDoesNotBuffer(t *testing.T) {
	const (
		frameSize = 100 << 20
		maxSize   = 1 << 20
	)
	gen := &frameGenerator{size: frameSize, tail: []byte("\vnext\x1c\r")}
	r := NewReader(gen, maxSize)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := r.ReadFrame()
	runtime.ReadMemStats(&after)

	require.ErrorIs(t, err, ErrFrameTooLarge)
	var fe *FrameError
	require.ErrorAs(t, err, &fe)
	require.Len(t, fe.Partial, maxSize)
	require.Equal(t, int64(maxSize), fe.Size)
	// The error arrives after reading about maxSize bytes, not the frame.
	require.LessOrEqual(t, gen.pos, int64(1+maxSize+readBufferSize))
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8*maxSize))

	// Resync: the rest of the frame is skipped, at most maxSize+1 bytes of junk
	// per call, then the next frame is read.
	skipped := int64(0)
	for {
		f, err := r.ReadFrame()
		n, _ := r.Discarded()
		skipped += n
		if errors.Is(err, ErrTooMuchJunk) {
			continue
		}
		require.NoError(t, err)
		require.Equal(t, []byte("next"), f)
		break
	}
	require.Equal(t, int64(frameSize-maxSize+2), skipped)
	_, err = r.ReadFrame()
	require.Equal(t, io.EOF, err)
}

func TestReadFrameLargeFrameAcrossBuffers(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef\r"), 50_000) // ~850 KB
	var buf bytes.Buffer
	require.NoError(t, WriteFrame(&buf, payload))
	require.NoError(t, WriteFrame(&buf, []byte("second")))
	r := NewReader(&buf, 0)
	f, err := r.ReadFrame()
	require.NoError(t, err)
	require.True(t, bytes.Equal(payload, f))
	f, err = r.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, []byte("second"), f)
}

func TestNewReaderDefaults(t *testing.T) {
	require.Equal(t, DefaultMaxMessageSize, NewReader(bytes.NewReader(nil), 0).MaxSize())
	require.Equal(t, DefaultMaxMessageSize, NewReader(bytes.NewReader(nil), -1).MaxSize())
	require.Equal(t, 10, NewReader(bytes.NewReader(nil), 10).MaxSize())
}

func TestFrameErrorUnwrap(t *testing.T) {
	e := &FrameError{Err: ErrFrameTooLarge, Partial: []byte("secret"), Size: 6}
	require.ErrorIs(t, e, ErrFrameTooLarge)
	require.NotErrorIs(t, e, ErrIncompleteFrame)
	require.Equal(t, "mllp: frame exceeds maximum size (6 bytes)", e.Error())
}

// TestReadFrameAdversarialStreamsAreLinear feeds streams made of delimiters,
// for which a naive scanner rescans its whole buffer for every delimiter:
// with 16 MiB of start blocks that takes tens of seconds instead of a
// fraction of one. Streams of tiny frames are smaller because they cost
// one ReadFrame call per frame anyway.
func TestReadFrameAdversarialStreamsAreLinear(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		pattern string
		size    int
	}{
		{"start blocks", "", "\v", 16 << 20},
		{"end blocks as data", "\v", "\x1cX", 16 << 20},
		{"junk", "", "x", 16 << 20},
		{"empty frames without CR", "", "\v\x1c", 2 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := []byte(tt.prefix)
			stream = append(stream, bytes.Repeat([]byte(tt.pattern), tt.size/len(tt.pattern))...)
			stream = append(stream, "\vlast\x1c\r"...)
			r := NewReader(bytes.NewReader(stream), 64<<20)
			start := time.Now()
			var last []byte
			for {
				f, err := r.ReadFrame()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				last = f
			}
			require.Equal(t, "last", string(last))
			require.Less(t, time.Since(start), 10*time.Second, "reading is not linear in the input")
		})
	}
}
