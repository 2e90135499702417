package owner

import (
	"errors"
	"fmt"

	"github.com/nhp/interop/internal/fhirclient"
)

var (
	// ErrRefused marks an owner's permanent refusal: the same request cannot succeed later
	// (an invalid resource, several resources matching a condition, a 4xx but 408 and 429).
	// Every other failure is transient and worth retrying.
	ErrRefused = errors.New("refused by the owner")
	// ErrTargetMissing is a conditional patch's answer when no resource carries the identifier.
	ErrTargetMissing = errors.New("the patched resource does not exist")

	// ErrTimeout, ErrUnreachable and ErrTooLarge are Do's transport failures: the owner ran
	// out of time, could not be reached (or its answer was cut off), or answered more than the
	// resolver reads.
	ErrTimeout     = errors.New("owner timed out")
	ErrUnreachable = errors.New("owner unreachable")
	ErrTooLarge    = errors.New("owner answer too large")

	// ErrPageTooLarge is a search page beyond OpenPage's maxBytes.
	ErrPageTooLarge = errors.New("owner page too large")
	// ErrNotSearchset is a search answer that is not a FHIR JSON searchset Bundle.
	ErrNotSearchset = errors.New("not a FHIR JSON Bundle")
	// ErrNotUnderBase is a link outside the owner's base URL (a next link to another server):
	// it is not followed, so that the owner's credentials go to the owner only.
	ErrNotUnderBase = fhirclient.ErrNotUnderBase
)

// StatusError is an owner's non-success answer to a search or a write: its status and its
// OperationOutcome's first diagnostics. Permanent ones are also ErrRefused.
type StatusError = fhirclient.OwnerError

// refusal is a permanent refusal of typ by the owner labelled owner.
type refusal struct {
	owner, what string
	err         error
}

func (r *refusal) Error() string {
	return fmt.Sprintf("%s refused %s: %v", r.owner, r.what, r.err)
}

func (r *refusal) Unwrap() []error { return []error{ErrRefused, r.err} }

// refused wraps err as the owner's permanent refusal of what (a type, "Type patch").
func refused(owner, what string, err error) error {
	return &refusal{owner: owner, what: what, err: err}
}

// notSearchset is ErrNotSearchset with what the answer was instead.
type notSearchset struct{ what string }

func (e *notSearchset) Error() string { return ErrNotSearchset.Error() + ": " + e.what }
func (e *notSearchset) Unwrap() error { return ErrNotSearchset }
