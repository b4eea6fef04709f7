package tsdbtest

import "testing"

func TestMemKV(t *testing.T) { TestKV(t, NewKV()) }
