package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// StatusError is a non-2xx answer of the daemon.
type StatusError struct {
	HTTPStatus int           // e.g. 429
	RetryAfter time.Duration // from Retry-After; 0 when absent
	Err        *api.Error    // the body's error; never nil
}

// Error reads like "resource_exhausted: queue full (HTTP 429, retry after 1s)".
func (e *StatusError) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString(http.StatusText(e.HTTPStatus))
	}
	fmt.Fprintf(&b, " (HTTP %d", e.HTTPStatus)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	b.WriteString(")")
	return b.String()
}

// Unwrap gives the *api.Error, so that errors.As(err, &apiErr) works.
func (e *StatusError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// UnreachableError means nothing answered on the socket: no daemon, no
// socket file, or no permission to use it.
type UnreachableError struct {
	Socket string
	Err    error // from connect(2)
}

func (e *UnreachableError) Error() string {
	hint := "is the daemon running? set --socket or SANDBOXD_SOCKET"
	if errors.Is(e.Err, os.ErrPermission) {
		hint = "may this user use the socket? set --socket or SANDBOXD_SOCKET"
	}
	cause := e.Err
	var op *net.OpError
	if errors.As(cause, &op) && op.Err != nil {
		cause = op.Err // drop "dial unix PATH", which repeats the socket
	}
	return fmt.Sprintf("cannot reach sandboxd at %s: %v (%s)", e.Socket, cause, hint)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// errorBodyLimit bounds how much of an error answer is read.
const errorBodyLimit = 64 << 10

// statusError turns a non-2xx answer into a *StatusError. A body that is
// not {"error": {...}} still gives one, with a code chosen by the status and
// the body's first bytes as the message.
func statusError(resp *http.Response) *StatusError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	e := &StatusError{
		HTTPStatus: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	var eb api.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		e.Err = eb.Error
		return e
	}
	msg := "the daemon's answer has no body"
	if s := strings.TrimSpace(string(body)); s != "" {
		const max = 200
		if len(s) > max {
			s = s[:max] + "..."
		}
		msg = fmt.Sprintf("the daemon's answer is not a JSON error: %q", s)
	}
	e.Err = &api.Error{Code: codeForStatus(resp.StatusCode), Message: msg}
	return e
}

// codeForStatus is the error code (docs/api.md) that goes with an HTTP status.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return api.CodeInvalidArgument
	case http.StatusUnauthorized, http.StatusForbidden:
		return api.CodePermissionDenied
	case http.StatusNotFound:
		return api.CodeNotFound
	case http.StatusConflict:
		return api.CodeConflict
	case http.StatusTooManyRequests:
		return api.CodeResourceExhausted
	case http.StatusServiceUnavailable:
		return api.CodeUnavailable
	case http.StatusInternalServerError:
		return api.CodeInternal
	}
	return "http_" + strconv.Itoa(status)
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}
