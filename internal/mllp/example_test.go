package mllp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/nhp/interop/internal/mllp"
)

func Example() {
	// A handler building a (fake) acknowledgement for every message.
	handler := mllp.HandlerFunc(func(_ context.Context, _ mllp.ConnInfo, _ []byte) []byte {
		return []byte("MSH|^~\\&|RCV||SND||||ACK|1|P|2.5\rMSA|AA|1\r")
	})
	srv := &mllp.Server{
		Handler:        handler,
		ReadTimeout:    10 * time.Minute,
		WriteTimeout:   30 * time.Second,
		MaxConnections: 100,
		OnFrameError: func(conn mllp.ConnInfo, err error, partial []byte) { //nolint:revive // unused-parameter: named for the example's reader
			// Keep partial for audit here.
		},
		Logger: slog.New(slog.DiscardHandler),
	}
	// Listening first tells the address when the port is chosen by the OS.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		if err := srv.Serve(l); !errors.Is(err, mllp.ErrServerClosed) {
			panic(err)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := mllp.Dial(ctx, l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer client.Close()
	reply, err := client.Send(ctx, []byte("MSH|^~\\&|SND||RCV||||ADT^A01|1|P|2.5\rPID|1\r"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", reply)

	if err := srv.Shutdown(ctx); err != nil {
		panic(err)
	}
	// Output: "MSH|^~\\&|RCV||SND||||ACK|1|P|2.5\rMSA|AA|1\r"
}

func ExampleReader() {
	stream := []byte("noise\v MSH|1\x1c\r\vMSH|2\x1c\r\vMSH|cut")
	r := mllp.NewReader(bytes.NewReader(stream), mllp.DefaultMaxMessageSize)
	for {
		frame, err := r.ReadFrame()
		if n, _ := r.Discarded(); n > 0 {
			fmt.Printf("skipped %d junk bytes\n", n)
		}
		var fe *mllp.FrameError
		switch {
		case err == io.EOF:
			return
		case errors.As(err, &fe):
			fmt.Printf("%v, partial %q\n", fe.Err, fe.Partial)
		case err != nil:
			panic(err)
		default:
			fmt.Printf("frame %q\n", frame)
		}
	}
	// Output:
	// skipped 5 junk bytes
	// frame " MSH|1"
	// frame "MSH|2"
	// mllp: stream ended inside a frame, partial "MSH|cut"
}
