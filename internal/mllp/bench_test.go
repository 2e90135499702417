package mllp

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// hl7Payload returns an HL7-looking payload of about size bytes.
func hl7Payload(size int) []byte {
	seg := []byte("OBX|1|TX|NOTE^Note||Lorem ipsum dolor sit amet, consectetur adipiscing elit||||||F\r")
	p := append([]byte("MSH|^~\\&|SND|FAC|RCV|FAC|20240101120000||ORU^R01|MSG0001|P|2.5\r"), bytes.Repeat(seg, size/len(seg)+1)...)
	return p[:size]
}

// cycleReader replays data forever, as a socket delivering a steady stream
// of frames would.
type cycleReader struct {
	data []byte
	pos  int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.data[c.pos:])
		n += k
		c.pos = (c.pos + k) % len(c.data)
	}
	return n, nil
}

func BenchmarkReadFrame(b *testing.B) {
	for _, size := range []int{2 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			var frame bytes.Buffer
			if err := WriteFrame(&frame, hl7Payload(size)); err != nil {
				b.Fatal(err)
			}
			r := NewReader(&cycleReader{data: frame.Bytes()}, 0)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.ReadFrame(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriteFrame(b *testing.B) {
	payload := hl7Payload(2 << 10)
	var w bytes.Buffer
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		w.Reset()
		if err := WriteFrame(&w, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerRoundTrip measures one message and its acknowledgement
// over loopback TCP: client write, server read, handler, server write,
// client read.
func BenchmarkServerRoundTrip(b *testing.B) {
	ack := []byte("MSH|^~\\&|RCV|FAC|SND|FAC|20240101120000||ACK|ACK0001|P|2.5\rMSA|AA|MSG0001\r")
	for _, size := range []int{2 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			h := HandlerFunc(func(context.Context, ConnInfo, []byte) []byte { return ack })
			c := dialClient(b, serve(b, &Server{Handler: h}))
			msg := hl7Payload(size)
			ctx := b.Context()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
