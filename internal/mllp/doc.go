// Package mllp implements the Minimal Lower Layer Protocol (MLLP), the
// framing HL7 v2 messages use over TCP: framing ([Reader], [WriteFrame]), a
// server ([Server]) and a client ([Client]).
//
// The package is pure transport: it knows nothing about HL7 itself. A
// message is an opaque byte slice; building acknowledgements is the job of
// the [Handler].
//
// # Framing
//
// A frame is a start block (0x0B, VT), the payload, an end block (0x1C, FS)
// and a carriage return (0x0D, CR):
//
//	<VT> payload <FS><CR>
//
// The [Reader] is strict about what a payload can contain and lenient about
// what surrounds it, following what production interface engines do:
//
//   - Bytes before a start block are junk. They are skipped and reported
//     through [Reader.Discarded], never returned as a message.
//   - A start block inside a frame restarts the frame: the bytes received
//     so far (with their start block) become junk. Senders that crash or
//     time out half-way and then resend produce exactly this pattern, and
//     keeping the truncated copy as a message would be wrong.
//   - The frame ends at FS followed by CR. An FS followed by end of stream
//     or by a start block also ends the frame (the CR went missing). An FS
//     followed by anything else is payload data.
//   - A frame whose payload exceeds the maximum size fails with
//     [ErrFrameTooLarge] as soon as the limit is crossed, without buffering
//     the rest; the next read resynchronises at the next start block.
//   - A stream ending inside a frame fails with [ErrIncompleteFrame]; the
//     bytes received are kept in [FrameError.Partial] for audit.
//
// As a consequence, a payload read by the Reader never contains VT or the
// sequence FS CR, and [WriteFrame] refuses payloads that do, so that every
// payload written is read back unchanged.
//
// # Server
//
// [Server] is shaped like net/http's: one goroutine per connection, and
// messages on a connection handled strictly in order (read a frame, call
// the handler, write its reply, read the next frame), which is what MLLP
// senders expect since they wait for each acknowledgement before sending
// the next message. See [Server] for the lifecycle, limits and shutdown
// rules.
//
// For TLS, pass a listener from [crypto/tls.NewListener] to [Server.Serve]
// and use [WithTLSConfig] on the client side. The server completes each
// handshake before reading, within ReadTimeout, and puts a verified client
// certificate's subject in [ConnInfo.TLSPeer].
package mllp
