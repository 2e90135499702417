package db

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The sentinels callers test with errors.Is. Every error that leaves this package through a
// Pool, a transaction or a Queries built on them has been through interpret, so callers never
// inspect pgx errors (River's riverpgxv5 interpretError is the model).
var (
	// ErrNotFound: a query that must find one row found none.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique constraint or unique index refused the write (SQLSTATE 23505);
	// ConstraintName says which.
	ErrConflict = errors.New("unique violation")
	// ErrCheckViolation: a CHECK constraint, or one of the schema's invariant triggers (which
	// raise check_violation with a message worded for users), refused the write (23514).
	ErrCheckViolation = errors.New("check violation")
	// ErrForeignKey: the write names a row that does not exist, or deletes one still named
	// (23503).
	ErrForeignKey = errors.New("foreign key violation")
	// ErrInvalidData: the database cannot store or read a value as given (SQLSTATE class 22,
	// data exception: invalid UTF-8 or a NUL byte in text 22021, malformed JSON or uuid 22P02,
	// \u0000 in jsonb 22P05, …). The same statement with the same data fails the same way, so
	// it is never retryable.
	ErrInvalidData = errors.New("invalid data")
)

// SQLSTATE codes interpret maps.
const (
	codeUniqueViolation     = "23505"
	codeCheckViolation      = "23514"
	codeForeignKeyViolation = "23503"
	classDataException      = "22"
)

// Error is a driver error interpreted as one of the sentinels: errors.Is matches the sentinel,
// the text is the driver's, and the driver's error stays reachable for ConstraintName and
// ConstraintMessage.
type Error struct {
	sentinel error
	err      error
}

func (e *Error) Error() string   { return e.err.Error() }
func (e *Error) Unwrap() []error { return []error{e.sentinel, e.err} }

// interpret maps a pgx or pgconn error to the sentinel it means, wrapped in *Error; any other
// error (nil, a network failure, a cancelled context, an error already interpreted) is
// returned unchanged.
func interpret(err error) error {
	if err == nil {
		return nil
	}
	var done *Error
	if errors.As(err, &done) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &Error{sentinel: ErrNotFound, err: err}
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch {
	case pgErr.Code == codeUniqueViolation:
		return &Error{sentinel: ErrConflict, err: err}
	case pgErr.Code == codeCheckViolation:
		return &Error{sentinel: ErrCheckViolation, err: err}
	case pgErr.Code == codeForeignKeyViolation:
		return &Error{sentinel: ErrForeignKey, err: err}
	case strings.HasPrefix(pgErr.Code, classDataException):
		return &Error{sentinel: ErrInvalidData, err: err}
	}
	return err
}

// ConstraintName returns the constraint (or unique index) a write violated, e.g. to tell two
// unique rules of one table apart; "" for other errors.
func ConstraintName(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

// ConstraintMessage returns the database's message for a constraint or trigger violation,
// which our triggers word for users; "" for other errors.
func ConstraintMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == codeCheckViolation || pgErr.Code == codeUniqueViolation) {
		return pgErr.Message
	}
	return ""
}
