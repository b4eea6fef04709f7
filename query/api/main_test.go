package api_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: the Prometheus
// answer formatting starts some, and joins them before it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
