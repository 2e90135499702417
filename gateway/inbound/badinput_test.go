package inbound

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/gateway/internal/gatewaytest"
	"github.com/nhp/interop/internal/hl7v2"
)

// badMessage is one hostile or careless HL7 v2 message of the bad-input suite (#14).
type badMessage struct {
	name string
	raw  []byte
	// accept: the message is legal however odd (a sender may write it): it must be stored
	// and answered AA. Otherwise it must be refused, AR or AE with an ERR segment saying why,
	// and nothing stored.
	accept bool
}

// badHL7Inputs is the MLLP corpus: broken headers, delimiters, encodings and sizes, and
// hostile-but-legal values that must not break what comes after the ACK (workflow ids, SQL,
// logs).
func badHL7Inputs(t *testing.T) []badMessage {
	// Every case has a control id of its own (unless it is what the case breaks), so that no
	// refusal passes as a duplicate of an earlier case.
	n := 0
	fresh := func() []byte {
		n++
		return gatewaytest.Message(t, fmt.Sprintf("BAD-%04d", n))
	}
	msh := func(field int, v string) []byte { return gatewaytest.WithMSH(t, fresh(), field, v) }
	withHeader := func(edit func(header string) string) []byte {
		m := fresh()
		end := bytes.IndexByte(m, '\r')
		return append([]byte(edit(string(m[:end]))+"\r"), m[end+1:]...)
	}
	appended := func(tail string) []byte { return append(fresh(), tail...) }
	withPID := func(pid string) []byte {
		lines := strings.Split(string(fresh()), "\r")
		for i, l := range lines {
			if strings.HasPrefix(l, "PID|") {
				lines[i] = pid
			}
		}
		return []byte(strings.Join(lines, "\r"))
	}
	return []badMessage{
		// Refused: no header the engine can act on.
		{name: "garbage", raw: []byte("hello, is this the lab?")},
		{name: "binary", raw: []byte{0x00, 0x01, 0xff, 0xfe, 0x1b, 0x7f}},
		{name: "no MSH first", raw: append([]byte("PID|1||123\r"), fresh()...)},
		{name: "MSH only name", raw: []byte("MSH\r")},
		{name: "MSH no encoding characters", raw: withHeader(func(string) string { return "MSH|" })},
		{name: "MSH empty encoding characters", raw: withHeader(func(h string) string { return strings.Replace(h, `MSH|^~\&|`, `MSH|||||`, 1) })},
		{name: "MSH-9 empty", raw: msh(9, "")},
		{name: "MSH-9 garbage", raw: msh(9, "^^^")},
		{name: "MSH-10 empty", raw: msh(10, "")},
		{name: "MSH-9 not a type", raw: msh(9, "GENHOSP^A01")},
		{name: "MSH-12 empty", raw: msh(12, "")},
		{name: "MSH-12 unknown version", raw: msh(12, "9.9")},
		{name: "MSH-18 unknown charset", raw: msh(18, "KLINGON")},

		// Accepted: odd but legal, and harmless downstream. The content is the pipeline's to
		// judge: a message without a patient id is stored, ACKed and then dead-lettered with
		// its reason, as is one with an empty MSH-11 (the engine does not use it).
		{name: "PID-3 empty", raw: withPID("PID|1||||Doe^John"), accept: true},
		{name: "MSH-11 empty", raw: msh(11, ""), accept: true},
		{name: "MSH-10 non-ASCII", raw: msh(10, "été-1"), accept: true},
		{name: "MSH-10 1000 chars", raw: msh(10, strings.Repeat("9", 1000)), accept: true},
		{name: "MSH-3 10000 chars", raw: msh(3, strings.Repeat("A", 10000)), accept: true},
		{name: "MSH-10 with colons and percent", raw: msh(10, "a:b%c:d"), accept: true},
		{name: "MSH-10 SQL", raw: msh(10, "1'; DROP TABLE hl7_messages;--"), accept: true},
		{name: "MSH-10 log injection", raw: msh(10, "1\\X0A\\level=ERROR"), accept: true},
		{name: "MSH-3 path", raw: msh(3, "../../etc/passwd"), accept: true},
		{name: "NUL in a field", raw: withPID("PID|1||123^^^HOSP^MR||Doe\x00^John"), accept: true},
		{name: "bad escape", raw: withPID(`PID|1||123^^^HOSP^MR||Doe\Z\^John`), accept: true},
		{name: "10000 NTE segments", raw: appended(strings.Repeat("NTE|1||note\r", 10000)), accept: true},
		{name: "unknown Z segment", raw: appended("ZZZ|1|" + strings.Repeat("x", 5000) + "\r"), accept: true},
		{name: "LF segment ends", raw: bytes.ReplaceAll(fresh(), []byte("\r"), []byte("\n")), accept: true},
	}
}

// TestBadInputsMLLP replays the corpus on a real listener: every refusal is an AR or AE (CR
// or CE in enhanced mode) with
// an ERR segment and stores nothing; every legal oddity is stored once and answered AA; and a
// plain message is still accepted afterwards.
func TestBadInputsMLLP(t *testing.T) {
	t.Parallel()
	env := setup(t)
	for _, m := range badHL7Inputs(t) {
		t.Run(m.name, func(t *testing.T) {
			before := env.messageCount(t)
			reply, info := env.send(t, m.raw)
			if m.accept {
				require.Equal(t, hl7v2.AppAccept, info.Code, "reply: %q", truncate(reply, 400))
				require.Equal(t, before+1, env.messageCount(t), "stored once")
				return
			}
			// A header that reads as enhanced mode (MSH-15 set) is refused at commit level.
			require.Contains(t, []hl7v2.AckCode{hl7v2.AppReject, hl7v2.AppError, hl7v2.CommitReject, hl7v2.CommitError}, info.Code, "reply: %q", truncate(reply, 400))
			require.NotEmpty(t, info.Errors, "a refusal says why (ERR): %q", truncate(reply, 400))
			require.Equal(t, before, env.messageCount(t), "nothing stored for a refused message")
		})
	}
	_, info := env.send(t, gatewaytest.Message(t, "after-the-storm"))
	require.Equal(t, hl7v2.AppAccept, info.Code)
}

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[:n]
}
