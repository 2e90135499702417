// Package workflows holds the Temporal workflows and their contracts (task queue, inputs,
// results, workflow ids, search attributes), which the gateway and the worker both import.
//
// Workflow code is deterministic: it only orchestrates activities, uses workflow.Now and
// workflow timers, and never touches I/O, clocks, randomness or map order. `make lint` runs
// workflowcheck over this package.
//
// Versioning policy: a change that alters the commands a workflow emits (adding, removing or
// reordering activities or timers, changing their options) is guarded with workflow.GetVersion,
// so runs started by the previous build replay unchanged. The committed histories in
// testdata/histories are replayed by TestReplay; a change that breaks replay fails CI. When a
// change is deployed, record a new history with `go test ./cmd/interop -run TestDevEndToEnd
// -record-history inbound_hl7_vN_<outcome>` and commit it beside the old ones; remove a GetVersion branch only once no run
// older than the namespace retention can still be open.
package workflows
