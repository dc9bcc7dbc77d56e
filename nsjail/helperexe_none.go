//go:build !embedhelper

package nsjail

// embeddedHelper is empty without the embedhelper build tag: the helper is
// then the running binary itself, re-executed (its main must call
// HelperMain when IsHelper says so).
var embeddedHelper []byte
