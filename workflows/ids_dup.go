package workflows

import "strconv"

// InboundHL7DuplicateWorkflowID is the workflow id of the n-th (from 1) resend of key with
// other bytes that a connector with duplicatePolicy "accept" stored as a new message flagged
// as a duplicate of the original: the original's id (InboundHL7WorkflowID) followed by
// ":dup-<n>", so support staff find it next to the original. ':' inside MSH-3 and MSH-10 is
// escaped in the original's id, so no original message can have this id.
func InboundHL7DuplicateWorkflowID(k MessageKey, n int) string {
	return InboundHL7WorkflowID(k) + ":dup-" + strconv.Itoa(n)
}
