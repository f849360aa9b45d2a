package harness

import "testing"

// TestMain stops the shared services this test binary started once its
// tests end.
func TestMain(m *testing.M) { Main(m) }
