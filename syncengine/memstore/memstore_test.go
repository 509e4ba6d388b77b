package memstore_test

import (
	"sync"
	"testing"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
	"github.com/tessera-survey/tessera/syncengine/storetest"
)

func TestContract(t *testing.T) {
	// "Reopening" a key returns the same store: memory lives as long as
	// the test process.
	var mu sync.Mutex
	stores := map[string]*memstore.Store{}
	n := 0
	storetest.Run(t, func(t *testing.T, key string) syncengine.Store {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := stores[key]; ok {
			return s
		}
		s := memstore.New()
		stores[key] = s
		return s
	}, func(t *testing.T) string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return string(rune('a'+n%26)) + string(rune('0'+n/26))
	})
}
