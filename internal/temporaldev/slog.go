package temporaldev

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts slog to the server's log.Logger so that server logs end
// up wherever the rest of interop logs. The level floor is applied here, not
// by the caller's handler, because the server's info level is far noisier
// than ours.
type serverLogger struct {
	log *slog.Logger
}

var (
	_ log.Logger      = serverLogger{}
	_ log.WithLogger  = serverLogger{}
	_ log.SkipLogger  = serverLogger{}
	_ log.SLogWrapper = serverLogger{}
	_ slog.Handler    = minLevelHandler{}
)

// newServerLogger returns a server logger dropping records below level, and
// all records while muted is set.
func newServerLogger(l *slog.Logger, level slog.Leveler, muted *atomic.Bool) serverLogger {
	return serverLogger{log: slog.New(minLevelHandler{inner: l.Handler(), min: level, muted: muted})}
}

func (s serverLogger) Debug(msg string, tags ...tag.Tag) { s.emit(slog.LevelDebug, msg, tags) }
func (s serverLogger) Info(msg string, tags ...tag.Tag)  { s.emit(slog.LevelInfo, msg, tags) }
func (s serverLogger) Warn(msg string, tags ...tag.Tag)  { s.emit(slog.LevelWarn, msg, tags) }
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }

// DPanic, Panic and Fatal only log: a library must not panic or exit the
// host process. The server's Fatal calls mostly guard failed binds, which
// Start rules out up front by checking the ports it hands out.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }
func (s serverLogger) Panic(msg string, tags ...tag.Tag)  { s.emit(slog.LevelError, msg, tags) }
func (s serverLogger) Fatal(msg string, tags ...tag.Tag)  { s.emit(slog.LevelError, msg, tags) }

// With lets the server pre-bind tags without the generic (slower) wrapper.
func (s serverLogger) With(tags ...tag.Tag) log.Logger {
	return serverLogger{log: s.log.With(attrsAsAny(tags)...)}
}

// Skip exists because the server asks for caller skipping; slog records the
// caller itself, so there is nothing to adjust.
func (s serverLogger) Skip(int) log.Logger { return s }

// SLog lets the server's own slog bridge (log.NewSlogLogger) hand out our
// logger instead of wrapping it a second time.
func (s serverLogger) SLog() *slog.Logger { return s.log }

func (s serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.Any(t.Key(), t.Value())
	}
	s.log.LogAttrs(ctx, level, msg, attrs...)
}

func attrsAsAny(tags []tag.Tag) []any {
	out := make([]any, len(tags))
	for i, t := range tags {
		out[i] = slog.Any(t.Key(), t.Value())
	}
	return out
}

// minLevelHandler drops records below min before they reach inner, so a
// debug-level application handler still gets a quiet server. While muted
// (optional) is set it drops everything.
type minLevelHandler struct {
	inner slog.Handler
	min   slog.Leveler
	muted *atomic.Bool
}

func (h minLevelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	if h.muted != nil && h.muted.Load() {
		return false
	}
	return level >= h.min.Level() && h.inner.Enabled(ctx, level)
}

func (h minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{inner: h.inner.WithAttrs(attrs), min: h.min, muted: h.muted}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{inner: h.inner.WithGroup(name), min: h.min, muted: h.muted}
}
