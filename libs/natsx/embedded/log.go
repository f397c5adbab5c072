package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// logAdapter sends nats-server log lines to slog and remembers the first
// fatal error, so Start can fail fast instead of waiting for a timeout.
type logAdapter struct {
	log *slog.Logger

	mu    sync.Mutex
	fatal error
}

func newLogAdapter(l *slog.Logger) *logAdapter {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &logAdapter{log: l.With("component", "nats-server")}
}

func (a *logAdapter) fatalErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fatal
}

func (a *logAdapter) emit(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !a.log.Enabled(ctx, level) {
		return
	}
	a.log.Log(ctx, level, fmt.Sprintf(format, v...))
}

// Noticef implements server.Logger.
func (a *logAdapter) Noticef(format string, v ...any) { a.emit(slog.LevelInfo, format, v) }

// Warnf implements server.Logger.
func (a *logAdapter) Warnf(format string, v ...any) { a.emit(slog.LevelWarn, format, v) }

// Errorf implements server.Logger.
func (a *logAdapter) Errorf(format string, v ...any) { a.emit(slog.LevelError, format, v) }

// Debugf implements server.Logger.
func (a *logAdapter) Debugf(format string, v ...any) { a.emit(slog.LevelDebug, format, v) }

// Tracef implements server.Logger.
func (a *logAdapter) Tracef(format string, v ...any) { a.emit(slog.LevelDebug-4, format, v) }

// Fatalf implements server.Logger. It logs and records the error; it never
// exits the process (the standard logger would).
func (a *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.log.Error(msg, "fatal", true)
	a.mu.Lock()
	if a.fatal == nil {
		a.fatal = errors.New(msg)
	}
	a.mu.Unlock()
}
