//go:build embedinit

package nsjail

import _ "embed"

// embeddedInit is cmd/sandboxd-init, built and copied here by `make build`.
//
//go:embed sandboxd-init
var embeddedInit []byte
