package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

type sendCmd struct {
	To      string        `required:"true" placeholder:"HOST:PORT" help:"MLLP listener to send to."`
	Timeout time.Duration `default:"30s" help:"How long to wait for each ACK."`
	Files   []string      `arg:"" type:"existingfile" help:"Files holding one message, several messages, or an FHS/BHS batch."`
}

func (s sendCmd) Run(ctx context.Context) error {
	client, err := mllp.Dial(ctx, s.To)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.To, err)
	}
	// Each message sent has had its ACK by then (or the command has already failed): closing
	// the connection cannot change what the command reports.
	defer func() { _ = client.Close() }()
	sent, refused := 0, 0
	for _, path := range s.Files {
		data, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file on the command line
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		msgs := splitMessages(data)
		if len(msgs) == 0 {
			return fmt.Errorf("%s: no MSH segment found", path)
		}
		for _, msg := range msgs {
			sendCtx, cancel := context.WithTimeout(ctx, s.Timeout)
			reply, err := client.Send(sendCtx, msg)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: send: %w", path, err)
			}
			sent++
			ack, err := hl7v2.ParseAck(reply)
			if err != nil {
				refused++
				fmt.Printf("%s\t?\tunreadable ACK: %v\n", path, err)
				continue
			}
			fmt.Printf("%s\t%s\t%s\n", ack.ControlID, ack.Code, ack.Text)
			if ack.Code != "AA" && ack.Code != "CA" {
				refused++
			}
		}
	}
	if refused > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("%d of %d messages were not accepted", refused, sent)}
	}
	return nil
}

// splitMessages cuts a file into its messages with the batch splitter, which finds segments as
// Parse does: each message is its segments as written, CR-terminated, without the batch envelope
// (FHS, BHS, BTS, FTS). Envelope problems (counts, missing trailers) are `interop hl7 lint`'s
// business: every message is sent. It returns nil when the file holds no MSH.
func splitMessages(data []byte) [][]byte {
	bf, err := hl7v2.SplitBatch(data)
	if err != nil {
		return nil
	}
	msgs := make([][]byte, len(bf.Messages))
	for i, m := range bf.Messages {
		msgs[i] = m.Data
	}
	return msgs
}
