package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

type sendCmd struct {
	To      string        `required:"true" placeholder:"HOST:PORT" help:"MLLP listener to send to."`
	Timeout time.Duration `default:"30s" help:"How long to wait for each ACK."`
	TLS     bool          `name:"tls" help:"Speak MLLP over TLS (1.2 or later), trusting the system's CAs unless --ca is given."`
	CA      string        `name:"ca" type:"existingfile" placeholder:"FILE" help:"PEM CA bundle that signs the listener's certificate (implies --tls)."`
	Cert    string        `name:"cert" type:"existingfile" placeholder:"FILE" help:"PEM client certificate for mutual TLS, with --key (implies --tls)."`
	Key     string        `name:"key" type:"existingfile" placeholder:"FILE" help:"PEM private key of --cert."`
	Files   []string      `arg:"" type:"existingfile" help:"Files holding one message, several messages, or an FHS/BHS batch."`
}

// tlsConfig is the client's TLS configuration from the flags, nil for plain TCP.
func (s sendCmd) tlsConfig() (*tls.Config, error) {
	if !s.TLS && s.CA == "" && s.Cert == "" && s.Key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA) //nolint:gosec // G304: the operator names the file on the command line
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", s.CA)
		}
	}
	if (s.Cert == "") != (s.Key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if s.Cert != "" {
		cert, err := tls.LoadX509KeyPair(s.Cert, s.Key)
		if err != nil {
			return nil, fmt.Errorf("--cert %s with --key %s: %w", s.Cert, s.Key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (s sendCmd) Run(ctx context.Context) error {
	var opts []mllp.DialOption
	tlsConfig, err := s.tlsConfig()
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		opts = append(opts, mllp.WithTLSConfig(tlsConfig))
	}
	client, err := mllp.Dial(ctx, s.To, opts...)
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
