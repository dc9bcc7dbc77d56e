//go:build embedhelper

package nsjail

import _ "embed"

// embeddedHelper is cmd/sandboxd-helper, built and copied here by `make build`.
//
//go:embed sandboxd-helper
var embeddedHelper []byte
