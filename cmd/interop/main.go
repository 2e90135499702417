// Command interop is the Interop Service: one binary whose subcommands run the whole service
// on a laptop (dev), its production roles (gateway, worker), and its tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	// The zone database, as a fallback when the host has none (a scratch image): connector and
	// tenant zones are validated by one process and loaded by another, which must agree.
	_ "time/tzdata"

	"github.com/alecthomas/kong"

	"github.com/nhp/interop/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type cli struct {
	Dev     devCmd     `cmd:"" help:"Run everything in one process: embedded Temporal server and UI, migrations, worker, gateway and the default MLLP listener."`
	Gateway gatewayCmd `cmd:"" help:"Run the HTTP gateway (FHIR, admin API) and the MLLP listeners against an external Temporal."`
	Worker  workerCmd  `cmd:"" help:"Run the Temporal worker (workflows and activities)."`
	Store   storeCmd   `cmd:"" help:"Run the built-in FHIR store alone, as an owning FHIR service with its own database."`
	Migrate migrateCmd `cmd:"" help:"Apply or revert the embedded database migrations."`
	Token   tokenCmd   `cmd:"" help:"Print a signed bearer token for a tenant and scopes."`
	Send    sendCmd    `cmd:"" help:"Send HL7 v2 messages over MLLP and print one line per ACK."`
	HL7     hl7Cmd     `cmd:"" name:"hl7" help:"Lint HL7 v2 files or print the FHIR Bundles they map to, offline."`
	Replay  replayCmd  `cmd:"" help:"Replay workflow histories against this build to catch non-determinism before deploying."`
	Version versionCmd `cmd:"" help:"Print the version."`
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: configuration: %v\n", err)
		return 2
	}
	var c cli
	parser, err := kong.New(&c,
		kong.Name("interop"),
		kong.Description("Interop Service: HL7 v2 over MLLP in, FHIR R4 out, as Temporal workflows."),
		kong.UsageOnError(),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		// What FatalIfErrorf does, but usage errors exit 2 (kong's is 80),
		// as Unix tools do, so that 1 can mean "ran, and found something
		// wrong" (`hl7 lint`, `send`).
		var perr *kong.ParseError
		if errors.As(err, &perr) {
			_ = perr.Context.PrintUsage(false)
			_, _ = fmt.Fprintln(parser.Stdout) // as PrintUsage's: the usage error below is what matters
		}
		parser.Errorf("%s", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		var coded exitError
		if errors.As(err, &coded) {
			return coded.code
		}
		return 1
	}
	return 0
}

type versionCmd struct{}

func (versionCmd) Run() error {
	fmt.Println("interop", version)
	return nil
}

// exitError carries a specific exit status (e.g. 1 from `send` when a message was not accepted).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }
