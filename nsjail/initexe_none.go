//go:build !embedinit

package nsjail

// embeddedInit is empty without the embedinit build tag: the init is then
// the running binary itself, re-executed (its main must call Init when
// IsInit says so).
var embeddedInit []byte
