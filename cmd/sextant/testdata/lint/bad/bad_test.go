package bad

import (
	"testing"
	"time"
)

func TestWaits(t *testing.T) {
	time.Sleep(time.Millisecond) // synctest: allowed, it says why
	time.Sleep(time.Second)
}
