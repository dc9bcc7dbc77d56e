package engine

import (
	"os"
	"testing"

	"github.com/sandboxd/sandboxd/nsjail"
)

// TestMain serves as the helper when the test binary is started as one.
// Without the embedhelper tag the helper is this binary run again; were
// it to run the tests instead, each of its engines would start helpers of
// their own, without end.
func TestMain(m *testing.M) {
	if nsjail.IsHelper() {
		nsjail.HelperMain()
	}
	os.Exit(m.Run())
}
