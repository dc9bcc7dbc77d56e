// Package escape is the escape corpus of sandboxd: small hostile programs
// (C in testdata/, compiled with the host's gcc when the tests start; Python
// and shell inline), each trying one way out of the sandbox or one way to
// hurt the host, run through a real daemon's API. Each case states the one
// outcome it must get: the attack fails, and the sandbox reports the right
// verdict. After every case nothing of it may be left on the host.
//
// Run it as root:
//
//	make build
//	SANDBOXD_BIN=$PWD/bin/sandboxd go test -tags embedhelper -count=1 ./test/escape/
package escape
