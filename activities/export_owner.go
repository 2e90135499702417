package activities

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/export"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/owner"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// Defaults of the reading of an external owner's FHIR search.
const (
	DefaultExportOwnerPageCount    = 500
	DefaultExportOwnerPageMaxBytes = 64 << 20
	// ownerPatientBatch is how many Patients one compartment search names
	// (patient=Patient/a,Patient/b…): few searches, and URLs well under the 8 KiB many servers
	// accept.
	ownerPatientBatch = 50
	// ownerHeartbeatEvery is how many resources a task writes between heartbeats within a page.
	ownerHeartbeatEvery = 100
)

// ownerKeepAliveEvery is how often a task waiting for an owner's answer heartbeats.
const ownerKeepAliveEvery = 5 * time.Second

// ownerFileTag tells apart the files of one type's tasks when the type has several owners
// (split by category): "" for the built-in store, whose file names stay as they were, else a
// short digest of the owner's URL, which file names must not reveal.
func ownerFileTag(owner string) string {
	if owner == routing.Builtin {
		return ""
	}
	sum := sha256.Sum256([]byte(owner))
	return hex.EncodeToString(sum[:4])
}

// ownerExport reads one task's resources through the owner's FHIR search:
//
//	GET {owner}/{Type}?_lastUpdated=le<transactionTime>[&_lastUpdated=ge<since>]
//	    &_sort=_lastUpdated&_count=<n>[&patient=Patient/a,…|&_id=a,…][&<_typeFilter query>]
//
// following each Bundle's next link and writing each match as one NDJSON line.
//
//   - Snapshot: a search cannot ask for the state at an instant, so the transaction time bounds
//     meta.lastUpdated. A resource changed after the transaction time is left out (the next
//     export with _since picks it up); one changed before it is exported as it is now. The
//     bounds are checked again on meta.lastUpdated, exactly (a search's instant has the
//     precision it is written with).
//   - Compartment: at group level, and at patient level with `patient`, the Patients are
//     named in batches of ownerPatientBatch (patient=Patient/…, or _id for Patient). Every
//     compartment type's patient parameter holds one reference (store.PatientCompartmentTypes),
//     so the batches are disjoint; still, a resource is written only in the batch of the
//     first of its Patients, so that none is written twice, and only if one of its Patients
//     is named, in case the owner ignored the parameter. At patient level without `patient`
//     the type is searched whole and only resources with a Patient reference (and every
//     Patient) are written: FHIR has no standard "has a patient" search that every owner
//     supports. The Patient compartment is the one the built-in store indexes
//     (store.CompartmentPatients).
//   - _typeFilter: the type's one query is added to the search as is; several are refused at
//     kick-off and here (export.CheckOwnerFilters).
//   - Resume: the heartbeat cursor holds the page (URL) of the last committed resource and
//     the ids committed from it; a retried run fetches that page again, skips those ids, and
//     goes on. This needs the owner's next links to stay valid across a retry (an `interop
//     store` needs --cursor-key for that, if it may restart meanwhile), and the files of a
//     retry to repeat the lines of the lost try, which holds as long as no resource of the
//     pages read again changes meanwhile.
//   - Memory: each page is decoded as a stream, one entry at a time, and a page larger than
//     ExportOwnerPageMaxBytes fails the export.
//   - Not read from an owner: the `deleted` files of an export with _since (a search does not
//     return deletions).
type ownerExport struct {
	a      *Activities
	tenant string
	typ    string
	owner  owner.Owner
	fw     *fileWriter
	tt     time.Time
	since  time.Time
	// query holds the search's parameters but the Patient batch.
	query url.Values
	// compartment: only resources of the Patient compartment. batches are the Patient ids each
	// search names (one nil batch: no patient parameter); batchOf maps a Patient to its first
	// batch.
	compartment bool
	batches     [][]string
	batchOf     map[string]int
	maxBytes    int64
	line        bytes.Buffer
}

// exportOwner writes the task's resources from its external owner (see ownerExport).
func (a *Activities) exportOwner(ctx context.Context, job db.BulkExportJob, req export.Request, task ExportTask, o owner.Owner, scope exportScope, fw *fileWriter) error {
	invalid := func(msg string, err error) error {
		return temporal.NewNonRetryableApplicationError("export "+task.Type+": "+msg, ErrTypeExportInvalid, err)
	}
	filters := req.TypeFilters[task.Type]
	if err := export.CheckOwnerFilters(task.Type, filters); err != nil {
		return invalid(err.Error(), err)
	}
	if scope.compartment && !slices.Contains(store.PatientCompartmentTypes(), task.Type) {
		return invalid(store.ErrNotInCompartment.Error(), store.ErrNotInCompartment)
	}
	q := url.Values{}
	for _, f := range filters {
		vals, err := url.ParseQuery(f)
		if err != nil {
			return invalid("_typeFilter "+task.Type+"?"+f+": "+err.Error(), err)
		}
		for k, vs := range vals {
			if k == "_format" || k == "_pretty" {
				continue // they shape the answer, not the selection; the export reads JSON
			}
			q[k] = append(q[k], vs...)
		}
	}
	q.Add("_lastUpdated", "le"+job.TransactionTime.UTC().Format(time.RFC3339Nano))
	if !req.Since.IsZero() {
		// ge, not gt: gt excludes the whole precision of the instant; the exact bound is
		// checked on each resource.
		q.Add("_lastUpdated", "ge"+req.Since.UTC().Format(time.RFC3339Nano))
	}
	q.Set("_sort", "_lastUpdated")
	q.Set("_count", strconv.Itoa(cmp.Or(a.ExportOwnerPageCount, DefaultExportOwnerPageCount)))

	e := &ownerExport{
		a: a, tenant: job.TenantID, typ: task.Type, owner: o, fw: fw,
		tt: job.TransactionTime, since: req.Since, query: q, compartment: scope.compartment,
		maxBytes: cmp.Or(a.ExportOwnerPageMaxBytes, DefaultExportOwnerPageMaxBytes),
	}
	if !scope.compartment || scope.everyPatient {
		e.batches = [][]string{nil}
	} else {
		e.batchOf = map[string]int{}
		var batch []string
		for _, p := range scope.patients {
			if _, dup := e.batchOf[p]; dup || !fhir.ValidID(p) {
				continue // a reference that is no id names no resource
			}
			e.batchOf[p] = len(e.batches)
			if batch = append(batch, p); len(batch) == ownerPatientBatch {
				e.batches, batch = append(e.batches, batch), nil
			}
		}
		if len(batch) > 0 {
			e.batches = append(e.batches, batch)
		}
	}
	return e.run(ctx)
}

func (o *ownerExport) run(ctx context.Context) error {
	fw, cur := o.fw, o.fw.cur
	fw.kind = "output"
	batch, page, done := 0, "", []string(nil)
	if cur.Page != "" {
		if cur.Batch >= len(o.batches) {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("export %s: the heartbeat names Patient batch %d of %d", o.typ, cur.Batch, len(o.batches)), ErrTypeExportInvalid, nil)
		}
		batch, page, done = cur.Batch, cur.Page, cur.PageIDs
	}
	for ; batch < len(o.batches); batch++ {
		if page == "" {
			page = o.searchURL(batch)
		}
		for page != "" {
			next, err := o.page(ctx, batch, page, done)
			if err != nil {
				return err
			}
			activity.RecordHeartbeat(ctx, *cur)
			if next == page {
				return temporal.NewNonRetryableApplicationError("export "+o.typ+": the owning service's next link repeats the page", ErrTypeExportInvalid, nil)
			}
			page, done = next, nil
		}
	}
	return o.a.exportError(ctx, o.typ, fw.commit(ctx))
}

// searchURL is the first page of the search of one Patient batch.
func (o *ownerExport) searchURL(batch int) string {
	q := url.Values{}
	for k, vs := range o.query {
		q[k] = slices.Clone(vs)
	}
	if ids := o.batches[batch]; ids != nil {
		if o.typ == "Patient" {
			q.Add("_id", strings.Join(ids, ","))
		} else {
			refs := make([]string, len(ids))
			for i, id := range ids {
				refs[i] = "Patient/" + id
			}
			q.Add("patient", strings.Join(refs, ","))
		}
	}
	return o.owner.SearchURL(o.typ, q)
}

// page writes the matches of one page of the owner's search, but the ids of done (committed
// by an earlier try), and returns the page's next link ("" on the last page), resolved and
// checked to be under the owner's base URL.
func (o *ownerExport) page(ctx context.Context, batch int, pageURL string, done []string) (string, error) {
	stop := keepAlive(ctx, *o.fw.cur)
	page, err := o.owner.OpenPage(ctx, pageURL, o.maxBytes)
	stop()
	if err != nil {
		return "", o.ownerError(ctx, err)
	}
	defer page.Close()

	fw, cur := o.fw, o.fw.cur
	skip := make(map[string]bool, len(done))
	for _, id := range done {
		skip[id] = true
	}
	pageIDs := slices.Clone(done)
	var werr error // a failure to write, as opposed to one to read the page
	n := 0
	next, err := page.Matches(func(raw json.RawMessage) error {
		id, ok, err := o.keep(batch, raw)
		if err != nil || !ok || skip[id] {
			return err
		}
		o.line.Reset()
		if err := json.Compact(&o.line, raw); err != nil {
			return fmt.Errorf("%w: %v", owner.ErrNotSearchset, err)
		}
		part := cur.Part
		if err := fw.write(ctx, id, o.line.Bytes()); err != nil {
			werr = err
			return err
		}
		pageIDs = append(pageIDs, id)
		skip[id] = true       // once per page, should the owner repeat an entry
		if cur.Part != part { // the write committed a file: the cursor moves to this page
			cur.Batch, cur.Page, cur.PageIDs = batch, pageURL, slices.Clone(pageIDs)
		}
		if n++; n%ownerHeartbeatEvery == 0 {
			activity.RecordHeartbeat(ctx, *cur)
		}
		return nil
	})
	if werr != nil {
		return "", o.a.exportError(ctx, o.typ, werr)
	}
	if err != nil {
		return "", o.ownerError(ctx, err)
	}
	return next, nil
}

// keepAlive heartbeats cur every few seconds until stopped, while the task waits for an owner
// that is slow to answer: the heartbeat timeout is shorter than the HTTP client's. stop returns
// once the last of these heartbeats is recorded, so none overtakes a later cursor.
func keepAlive(ctx context.Context, cur exportCursor) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(ownerKeepAliveEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, cur)
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// keep decides whether a resource of the owner's page is written, and reads its id: it must be
// of the task's type, changed within the export's bounds, and, in a compartment export, in
// the compartment of a Patient of this batch and of no earlier one.
func (o *ownerExport) keep(batch int, raw json.RawMessage) (id string, ok bool, err error) {
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         struct {
			LastUpdated string `json:"lastUpdated"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", false, fmt.Errorf("%w: %v", owner.ErrNotSearchset, err)
	}
	if head.ResourceType != o.typ {
		return "", false, nil
	}
	if !fhir.ValidID(head.ID) {
		return "", false, fmt.Errorf("%w: a %s without a valid id", owner.ErrNotSearchset, o.typ)
	}
	if lu, err := time.Parse(time.RFC3339Nano, head.Meta.LastUpdated); err == nil {
		if lu.After(o.tt) || (!o.since.IsZero() && !lu.After(o.since)) {
			return head.ID, false, nil
		}
	}
	if !o.compartment {
		return head.ID, true, nil
	}
	patients, err := store.CompartmentPatients(o.typ, raw)
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", owner.ErrNotSearchset, err)
	}
	if o.batchOf == nil { // every Patient's compartment
		return head.ID, len(patients) > 0, nil
	}
	first := -1
	for _, p := range patients {
		if b, named := o.batchOf[p]; named && (first < 0 || b < first) {
			first = b
		}
	}
	return head.ID, first == batch, nil
}

// ownerError classifies a failure to read the owner's search. The messages reach the export's
// client (the job's error): they name the type, never the owner's URL, which is logged.
func (o *ownerExport) ownerError(ctx context.Context, err error) error {
	var oe *owner.StatusError
	switch {
	case errors.Is(err, owner.ErrRefused) && errors.As(err, &oe):
		msg := fmt.Sprintf("export %s: the service that owns %s refused its search (HTTP %d)", o.typ, o.typ, oe.Status)
		if oe.Diagnostics != "" {
			msg += ": " + oe.Diagnostics
		}
		// The cause is the owner's answer alone: the refusal's text names the owner's URL.
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeOwnerRefused, oe)
	case errors.Is(err, owner.ErrPageTooLarge):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"export %s: a page of the owning service's search is larger than %d bytes, the most this server reads at once", o.typ, o.maxBytes), ErrTypeExportInvalid, err)
	case errors.Is(err, owner.ErrNotSearchset):
		return temporal.NewNonRetryableApplicationError("export "+o.typ+": the owning service answered its search with "+err.Error(), ErrTypeExportInvalid, err)
	case errors.Is(err, owner.ErrNotUnderBase):
		return temporal.NewNonRetryableApplicationError("export "+o.typ+": the owning service's next link leads to another server", ErrTypeExportInvalid, err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	o.a.logger().Warn("export: reading an owner failed; the task is retried", "type", o.typ, "owner", o.owner.Label(), "error", err)
	if oe != nil {
		return fmt.Errorf("export %s: the owning service answered %d", o.typ, oe.Status)
	}
	return fmt.Errorf("export %s: the owning service did not answer in full (unreachable, timed out, or cut off)", o.typ)
}
